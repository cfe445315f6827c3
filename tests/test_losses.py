"""Tests for carl_core.losses: SCL against two independent references, its properties, the weak form.

References written here, not imported: (a) a per-video, per-frame loop transcription of the
equations in DESIGN.md; (b) a re-typing in torch of the authors' ``algos/scl.py``
(minghchen/CARL_code, negative type "single_noself"), with its whole-batch weight matrix.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from carl_core.losses import scl_loss, weak_pairs, weak_scl_loss

TAU, SIGMA2 = 0.1, 10.0


# --------------------------------------------------------------------------- inputs


def make_batch(
    rng: np.random.Generator,
    b: int,
    t: int,
    d: int,
    dtype: torch.dtype = torch.float32,
    *,
    pad: bool = True,
    same_len: bool = True,
    spread: float = 1.0,
    float_steps: bool = False,
):
    """Random L2-normalised embeddings, sorted frame indices, lengths and tail-padding masks."""
    embs = F.normalize(torch.from_numpy(rng.standard_normal((b, 2, t, d))), dim=-1).to(dtype)
    lens = rng.integers(max(t, 2), int(max(t, 2) * (1 + 2 * spread)) + 3, size=(b, 1))
    lens = np.repeat(lens, 2, axis=1) if same_len else rng.integers(max(t, 2), 4 * t + 10, size=(b, 2))
    steps = np.sort(rng.integers(0, lens[..., None], size=(b, 2, t)), axis=-1)
    masks = np.ones((b, 2, t), dtype=np.float32)
    if pad:
        for i in range(b):
            for v in range(2):
                masks[i, v, rng.integers(1, t + 1) :] = 0  # at least one real frame per view
    steps_t = torch.from_numpy(steps)
    if float_steps:
        steps_t = steps_t.to(dtype) + torch.from_numpy(rng.random((b, 2, t))).to(dtype)
    return embs.requires_grad_(True), torch.from_numpy(lens), steps_t, torch.from_numpy(masks)


def grad_of(fn, embs, *args, **kw):
    e = embs.detach().clone().requires_grad_(True)
    loss = fn(e, *args, **kw)
    loss.backward()
    return loss.detach(), e.grad


def rel(a: torch.Tensor, b: torch.Tensor, floor: float = 1e-2) -> float:
    """Largest difference relative to the reference's scale (floored: with T = 1 and no padding the
    true gradient is 0 and both sides are rounding noise)."""
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(floor))


# --------------------------------------------------------------------------- reference (a)


def design_loop(embs, seq_lens, steps, masks, tau=TAU, sigma2=SIGMA2):
    """DESIGN.md's "SCL, exactly", transcribed frame by frame (float64, torch for autograd)."""
    b_size, _, t_size, _ = embs.shape
    z = embs.double()
    frames = [(b, v, i) for b in range(b_size) for v in range(2) for i in range(t_size)]
    real = {f: bool(masks[f] != 0) for f in frames}
    total = z.new_zeros(())
    for b in range(b_size):
        for v in range(2):
            o = 1 - v
            for i in range(t_size):
                if not real[(b, v, i)]:
                    continue
                # Target: Gaussian over the real frames of the other view, normalised.
                t_i = float(steps[b, v, i]) / float(seq_lens[b, v]) * float(seq_lens[b, o])
                g = {}
                for j in range(t_size):
                    if real[(b, o, j)]:
                        g[j] = math.exp(-((t_i - float(steps[b, o, j])) ** 2) / (2 * sigma2))
                norm = sum(g.values())
                # Prediction: denominator over every frame of the batch, by the weight rule.
                weights = []
                for f in frames:
                    if not (real[f] and real[(b, v, i)]):
                        weights.append(1e-6)
                    elif f[0] == b and f[1] == o:
                        weights.append(1.0)
                    else:
                        weights.append(0.0)
                zk = torch.stack([z[f] for f in frames])
                denom = (torch.tensor(weights, dtype=torch.float64) * torch.exp(zk @ z[b, v, i] / tau)).sum()
                for j, gj in g.items():
                    y = gj / norm
                    if y == 0:
                        continue
                    p = torch.exp(z[b, v, i] @ z[b, o, j] / tau) / denom
                    total = total + y * (math.log(y) - torch.log(p + 1e-6))
    return total / float(masks.sum())


# --------------------------------------------------------------------------- reference (b)


def _nan_to_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isnan(x), torch.zeros_like(x), x)


def authors_scl(embs, seq_lens, steps, masks, temperature=TAU, label_variance=SIGMA2):
    """The authors' compute_sequence_loss ("gauss", "single_noself"), re-typed: one (N, N) matrix."""
    b_size, n_views, t_size, c = embs.shape
    x = embs.reshape(-1, c)
    st = steps.reshape(-1)
    ln = seq_lens.unsqueeze(-1).expand(b_size, n_views, t_size).reshape(-1).float()
    pm = masks.reshape(-1, 1) * masks.reshape(1, -1)
    logits = x @ x.t() / temperature
    dist = torch.abs(st.view(-1, 1) / ln.view(-1, 1) * ln.view(1, -1) - st.view(1, -1))
    dist = dist.masked_fill(pm == 0, 1e6)
    weight = torch.ones_like(logits)
    blocks = []
    for b in range(b_size):
        s, m, e = b * n_views * t_size, b * n_views * t_size + t_size, (b + 1) * n_views * t_size
        blocks.append((s, m, e))
        weight[s:e, :s] = 0
        weight[s:e, e:] = 0
        weight[s:m, s:m] = 0
        weight[m:e, m:e] = 0
    weight = weight.masked_fill(pm == 0, 1e-6)
    label = torch.zeros_like(logits)
    gauss = torch.exp(-torch.square(dist) / (2 * label_variance)).type_as(logits)
    for s, m, e in blocks:
        w = gauss[s:m, m:e]
        label[s:m, m:e] = _nan_to_zero(w / w.sum(dim=1, keepdim=True))
        w = gauss[m:e, s:m]
        label[m:e, s:m] = _nan_to_zero(w / w.sum(dim=1, keepdim=True))
    exp_logits = torch.exp(logits)
    denom = torch.sum(weight * exp_logits, dim=1, keepdim=True)
    kl = F.kl_div(torch.log(_nan_to_zero(exp_logits / denom) + 1e-6), label, reduction="none")
    return torch.sum(kl * pm) / torch.sum(masks)


# --------------------------------------------------------------------------- (a) equations


@pytest.mark.parametrize("seed", range(6))
def test_matches_design_equations_value_and_grad(seed):
    rng = np.random.default_rng(seed)
    b, t, d = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(2, 17))
    embs, lens, steps, masks = make_batch(
        rng, b, t, d, torch.float64, same_len=seed % 3 == 0, float_steps=seed % 2 == 1
    )
    ref, ref_g = grad_of(design_loop, embs, lens, steps, masks)
    got, got_g = grad_of(scl_loss, embs, lens, steps, masks)
    assert torch.isfinite(got)
    # Integer steps: distances in float32, as in the authors' code (t / L * L is not exactly t).
    tol = 1e-9 if steps.is_floating_point() else 1e-6
    assert abs(got.item() - ref.item()) <= tol * abs(ref.item())
    assert rel(got_g, ref_g) < 10 * tol
    # float32 input against the float64 equations.
    got32, got32_g = grad_of(scl_loss, embs.float(), lens, steps, masks)
    assert got32.dtype == torch.float32
    assert abs(got32.item() - ref.item()) <= 1e-4 * max(abs(ref.item()), 1e-2)
    assert rel(got32_g, ref_g) < 1e-4


def test_matches_design_equations_long_sequence():
    rng = np.random.default_rng(100)
    embs, lens, steps, masks = make_batch(rng, 2, 24, 32, torch.float64, float_steps=True)
    ref, ref_g = grad_of(design_loop, embs, lens, steps, masks)
    got, got_g = grad_of(scl_loss, embs, lens, steps, masks)
    assert abs(got.item() - ref.item()) <= 1e-9 * abs(ref.item())
    assert rel(got_g, ref_g) < 1e-8


# --------------------------------------------------------------------------- (b) authors' code


SHAPES = [(1, 1, 4), (1, 2, 8), (2, 1, 3), (2, 5, 16), (3, 7, 128), (4, 16, 64), (5, 9, 33), (8, 32, 128)]
SHAPES += [(8, 64, 128), (1, 64, 16), (6, 3, 7), (7, 12, 2)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_authors_code(shape, dtype):
    rng = np.random.default_rng(hash(shape) % 2**32)
    b, t, d = shape
    configs = [(True, 1.0, False), (False, 4.0, False), (False, 2.0, True)]
    if b * t > 128:  # large batches: one configuration keeps the suite fast
        configs = configs[1:2] if dtype == torch.float32 else configs[2:]
    for same_len, spread, float_steps in configs:
        embs, lens, steps, masks = make_batch(
            rng, b, t, d, dtype, same_len=same_len, spread=spread, float_steps=float_steps
        )
        ref, ref_g = grad_of(authors_scl, embs, lens, steps, masks)
        got, got_g = grad_of(scl_loss, embs, lens, steps, masks)
        assert got.dtype == dtype and torch.isfinite(got)
        assert abs(got.item() - ref.item()) <= 1e-5 * abs(ref.item()), (got.item(), ref.item())
        # Elementwise, including the ~1e-6-sized gradients of padded frames.
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        assert torch.allclose(got_g, ref_g, rtol=tol, atol=tol * ref_g.abs().max().item())


def test_matches_authors_code_when_gaussian_underflows():
    # Views far apart: some rows' Gaussian weights all underflow to 0 (no target in the authors'
    # code). Their float32 distances decide where, also for float64 embeddings.
    rng = np.random.default_rng(7)
    for dtype in (torch.float32, torch.float64):
        embs, lens, _, masks = make_batch(rng, 3, 6, 8, dtype)
        lens = torch.full((3, 2), 400)
        steps = torch.stack([torch.arange(6) * 3, torch.arange(6) * 3 + 40]).expand(3, 2, 6).clone()
        steps[1, 1] += 10  # some rows at ~45-50 frames: near float32's exp underflow
        steps[2, 1] += 100
        ref, ref_g = grad_of(authors_scl, embs, lens, steps, masks)
        got, got_g = grad_of(scl_loss, embs, lens, steps, masks)
        assert abs(got.item() - ref.item()) <= 1e-5 * abs(ref.item())
        assert torch.allclose(got_g, ref_g, rtol=1e-5, atol=1e-5 * ref_g.abs().max().item())


def test_matches_authors_code_without_padding_and_with_empty_view():
    rng = np.random.default_rng(3)
    embs, lens, steps, masks = make_batch(rng, 4, 10, 16, pad=False)
    ref = authors_scl(embs, lens, steps, masks)
    assert torch.allclose(scl_loss(embs, lens, steps), ref, rtol=1e-5)
    assert torch.allclose(scl_loss(embs, lens, steps, masks), ref, rtol=1e-5)
    masks[1, 1] = 0  # one view of one video entirely padded
    ref, ref_g = grad_of(authors_scl, embs, lens, steps, masks)
    got, got_g = grad_of(scl_loss, embs, lens, steps, masks)
    assert torch.isfinite(got_g).all()
    assert abs(got.item() - ref.item()) <= 1e-5 * abs(ref.item())
    assert torch.allclose(got_g, ref_g, rtol=1e-5, atol=1e-5 * ref_g.abs().max().item())


# --------------------------------------------------------------------------- (c) properties


def circle_views(omega: float, t: int = 24, d: int = 8):
    """Both views on a great circle, angle omega per frame: s_ij ~ 1/tau - omega^2 d_ij^2 / (2 tau)."""
    steps = torch.arange(t, dtype=torch.float64)
    z = torch.zeros(1, 2, t, d, dtype=torch.float64)
    z[0, :, :, 0], z[0, :, :, 1] = torch.cos(omega * steps), torch.sin(omega * steps)
    return z, torch.full((1, 2), t), steps.expand(1, 2, t).clone()


def test_loss_is_minimal_where_similarity_matches_prior():
    # The softmax of the similarities is the Gaussian prior when omega^2 / tau = 1 / sigma^2.
    best = math.sqrt(TAU / SIGMA2)
    z, lens, steps = circle_views(best)
    matched = scl_loss(z, lens, steps).item()
    assert 0 <= matched < 2e-3  # KL ~ 0 (up to the cosine's departure from a parabola)
    for omega in (0.5 * best, 0.8 * best, 1.25 * best, 2 * best):
        assert scl_loss(*circle_views(omega)).item() > matched + 1e-2
    torch.manual_seed(0)
    for _ in range(3):
        noisy = F.normalize(z + 0.05 * torch.randn_like(z), dim=-1)
        assert scl_loss(noisy, lens, steps).item() > matched
        random = F.normalize(torch.randn_like(z), dim=-1)
        assert scl_loss(random, lens, steps).item() > 100 * matched


def test_loss_lower_bound():
    # p sums to <= 1 over the other view, so the KL is >= -log(1 + T * 1e-6).
    rng = np.random.default_rng(11)
    for _ in range(10):
        embs, lens, steps, masks = make_batch(rng, 3, 12, 8)
        assert scl_loss(embs, lens, steps, masks).item() > -12e-6


def test_finite_with_padding_and_single_frame():
    rng = np.random.default_rng(5)
    for t in (1, 2, 5):
        embs, lens, steps, masks = make_batch(rng, 4, t, 16)
        loss = scl_loss(embs, lens, steps, masks)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(embs.grad).all()
    # T = 1 without padding: each frame's only partner is its match, so p = 1 and the KL is ~0.
    embs, lens, steps, _ = make_batch(rng, 3, 1, 8, pad=False)
    assert abs(scl_loss(embs, lens, steps).item()) < 1e-5


def test_padded_frames_do_not_affect_the_value():
    rng = np.random.default_rng(9)
    embs, lens, steps, masks = make_batch(rng, 4, 16, 32, torch.float64)
    masks[:, :, 10:] = 0
    base = scl_loss(embs, lens, steps, masks)
    pad = masks == 0
    # Steps of padded frames: no effect at all.
    steps2 = steps.clone()
    steps2[pad] = torch.from_numpy(rng.integers(0, 50, size=int(pad.sum())))
    assert scl_loss(embs, lens, steps2, masks).item() == pytest.approx(base.item(), rel=1e-12)
    # Embeddings of padded frames: only through the 1e-6 weights of the denominators.
    embs2 = embs.detach().clone()
    embs2[pad] = F.normalize(torch.randn(int(pad.sum()), 32, dtype=torch.float64), dim=-1)
    changed = scl_loss(embs2, lens, steps, masks).item()
    assert changed != base.item()
    assert abs(changed - base.item()) < 1e-4 * abs(base.item())
    base.backward()
    assert embs.grad[pad].abs().max() < 1e-2 * embs.grad[~pad].abs().max()


def test_gradcheck_float64():
    rng = np.random.default_rng(1)
    embs, lens, steps, masks = make_batch(rng, 2, 3, 4, torch.float64)
    masks[0, 1, 2] = 0
    assert torch.autograd.gradcheck(lambda e: scl_loss(e, lens, steps, masks), (embs,))


def test_bf16_and_autocast_compute_in_float32():
    rng = np.random.default_rng(2)
    embs, lens, steps, masks = make_batch(rng, 3, 8, 16)
    half = embs.detach().bfloat16().requires_grad_(True)
    loss = scl_loss(half, lens, steps, masks)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(scl_loss(half.detach().float(), lens, steps, masks).item(), rel=1e-6)
    loss.backward()
    assert half.grad.dtype == torch.bfloat16 and torch.isfinite(half.grad.float()).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = scl_loss(embs, lens, steps, masks)
    assert amp.dtype == torch.float32
    assert amp.item() == pytest.approx(scl_loss(embs, lens, steps, masks).item(), rel=1e-6)


def test_rejects_bad_shapes():
    embs = torch.zeros(2, 3, 4, 5)
    with pytest.raises(ValueError):
        scl_loss(embs, torch.ones(2, 3), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError):
        scl_loss(torch.zeros(2, 2, 4, 5), torch.ones(2, 2), torch.zeros(2, 2, 3))


# --------------------------------------------------------------------------- (d) weak form


class _Path:
    def __init__(self, a: np.ndarray, b: np.ndarray, cost: float):
        self.path_a, self.path_b, self.cost = a, b, cost


def local_dtw(x: np.ndarray, y: np.ndarray) -> _Path:
    """Plain O(nm) DTW, squared Euclidean cost, steps (1,0), (0,1), (1,1): the test's own check."""
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    i, j, path = n, m, []
    while (i, j) != (0, 0):
        path.append((i - 1, j - 1))
        moves = {(i - 1, j - 1): acc[i - 1, j - 1], (i - 1, j): acc[i - 1, j], (i, j - 1): acc[i, j - 1]}
        i, j = min(moves, key=moves.get)
    a, b = np.array(path[::-1]).T
    return _Path(a, b, float(acc[n, m]))


def expected_warp(embs, steps, masks, a, b) -> np.ndarray:
    rows = np.flatnonzero(masks[a, 0].numpy())
    cols = np.flatnonzero(masks[b, 1].numpy())
    x, y = embs[a, 0, rows].detach().numpy(), embs[b, 1, cols].detach().numpy()
    path = local_dtw(x, y)
    out = np.zeros(embs.shape[2])
    for k, r in enumerate(rows):
        out[r] = np.mean([float(steps[b, 1, cols[q]]) for q in path.path_b[path.path_a == k]])
    return out


def test_weak_pairs_only_share_labels_and_follow_dtw():
    rng = np.random.default_rng(4)
    embs, lens, steps, masks = make_batch(rng, 7, 10, 8)
    labels = torch.tensor([0, 1, 0, 2, 1, -1, 0])
    pairs = weak_pairs(embs, lens, steps, masks, labels, dtw_fn=local_dtw)
    assert pairs.index.tolist() == [[0, 2], [0, 6], [1, 4], [2, 6]]
    for p, (a, b) in enumerate(pairs.index.tolist()):
        assert labels[a] == labels[b] >= 0
        assert torch.equal(pairs.embs[p, 0], embs[a, 0]) and torch.equal(pairs.embs[p, 1], embs[b, 1])
        assert torch.equal(pairs.masks[p].float(), torch.stack([masks[a, 0], masks[b, 1]]))
        assert pairs.seq_lens[p].tolist() == [lens[b, 1].item()] * 2
        assert torch.equal(pairs.steps[p, 1], steps[b, 1].float())
        np.testing.assert_allclose(pairs.steps[p, 0].numpy(), expected_warp(embs, steps, masks, a, b), 1e-6)


def test_weak_pairs_identical_videos_map_onto_their_own_steps():
    rng = np.random.default_rng(6)
    embs, lens, steps, masks = make_batch(rng, 2, 12, 8, pad=False)
    embs = embs.detach().clone()
    embs[1, 1], steps[1, 1], lens[1] = embs[0, 0], steps[0, 0] + 5, lens[0] + 5
    pairs = weak_pairs(embs, lens, steps, masks, [3, 3], dtw_fn=local_dtw)
    assert torch.equal(pairs.steps[0, 0], steps[0, 0].float() + 5)


def test_weak_loss_runs_and_gradient_flows_to_paired_videos_only():
    rng = np.random.default_rng(8)
    embs, lens, steps, masks = make_batch(rng, 5, 9, 16)
    loss = weak_scl_loss(embs, lens, steps, masks, [1, 2, 1, 3, -1], dtw_fn=local_dtw)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    g = embs.grad.abs().sum(-1).sum(-1)  # (B, 2)
    assert g[0, 0] > 0 and g[2, 1] > 0
    assert g[0, 1] == 0 and g[2, 0] == 0 and g[1].sum() == 0 and g[3].sum() == 0 and g[4].sum() == 0
    # Equals SCL on the pairs it builds.
    pairs = weak_pairs(embs, lens, steps, masks, [1, 2, 1, 3, -1], dtw_fn=local_dtw)
    assert loss.item() == pytest.approx(scl_loss(pairs.embs, pairs.seq_lens, pairs.steps, pairs.masks).item())


def test_weak_loss_without_pairs_is_zero_and_differentiable():
    rng = np.random.default_rng(10)
    embs, lens, steps, masks = make_batch(rng, 3, 5, 4)
    loss = weak_scl_loss(embs, lens, steps, masks, torch.tensor([0, 1, 2]), dtw_fn=local_dtw)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(embs.grad, torch.zeros_like(embs))


def test_weak_pairs_with_project_dtw():
    # The default aligner, carl_core.align.dtw, must find the same optimal paths.
    rng = np.random.default_rng(12)
    embs, lens, steps, masks = make_batch(rng, 4, 11, 8)
    labels = [0, 0, 1, 0]
    ours = weak_pairs(embs, lens, steps, masks, labels)
    local = weak_pairs(embs, lens, steps, masks, labels, dtw_fn=local_dtw)
    assert torch.equal(ours.index, local.index)
    torch.testing.assert_close(ours.steps, local.steps)
    loss = weak_scl_loss(embs, lens, steps, masks, labels)
    loss.backward()
    assert torch.isfinite(loss) and embs.grad.abs().sum() > 0


def test_weak_pairs_with_single_real_frame():
    rng = np.random.default_rng(13)
    embs, lens, steps, masks = make_batch(rng, 3, 6, 8, pad=False)
    masks[0, 0, 1:] = 0  # a: one real frame -> it meets every frame of b
    masks[2, 1, 1:] = 0  # b: one real frame -> every frame of a meets it
    pairs = weak_pairs(embs, lens, steps, masks, [0, 0, 0])  # project DTW; never sees n = 1
    assert pairs.index.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert pairs.steps[0, 0, 0].item() == pytest.approx(steps[1, 1].double().mean().item())
    assert torch.equal(pairs.steps[2, 0], torch.full((6,), float(steps[2, 1, 0])))
    loss = scl_loss(pairs.embs, pairs.seq_lens, pairs.steps, pairs.masks)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(embs.grad).all()
