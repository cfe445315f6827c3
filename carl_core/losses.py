"""Sequence contrast loss (SCL) of CARL, self- and weakly-supervised.

Follows Chen et al., "Frame-wise Action Representations for Long Videos via Sequence Contrastive
Learning" (CVPR 2022), and computes exactly what the authors' ``algos/scl.py`` computes with the
negative type "single_noself" and the Gaussian positive type (github.com/minghchen/CARL_code):
the same (B*2*T)^2 whole-batch arithmetic in the same order, so value and gradient agree with theirs
to the last bit in float32 and float64, but built by broadcasting instead of a loop over the batch.

For a frame i of one view and a frame j of the other view of the same video:

    s_ij = z_i . z_j / tau                                  similarity logits
    d_ij = |t_i / L_i * L_j - t_j|                          timestamp distance
    y_ij = exp(-d_ij^2 / 2 sigma^2) / sum_k (same)          Gaussian prior over the other view
    p_ij = exp(s_ij) / sum_k w_ik exp(s_ik)                 predicted distribution
    loss = sum_ij y_ij (log y_ij - log(p_ij + 1e-6)) / (number of real frames)

The weak form (Chen et al., "Self-supervised and Weakly Supervised Contrastive Learning for
Frame-wise Action Representations", 2022) pairs videos that share a video-level label; DTW on
the current embeddings maps one video's frames onto the other's timeline, and the same loss
then pulls aligned frames together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from carl_core.align import Metric

__all__ = ["scl_loss", "weak_pairs", "weak_scl_loss", "VideoPairs"]

# The authors' constants. PAD_WEIGHT: their weight matrix gives every pair that involves a padded
# frame the weight 1e-6 instead of 0, over the whole batch, so padded frames of *any* video add a
# tiny term to each denominator. LOG_EPS: p is floored inside the log, which also bounds the loss.
PAD_WEIGHT = 1e-6
LOG_EPS = 1e-6
# Distance given to pairs that involve padding: its Gaussian weight underflows to exactly 0.
PAD_DISTANCE = 1e6


def scl_loss(
    embs: Tensor,
    seq_lens: Tensor,
    steps: Tensor,
    masks: Tensor | None = None,
    *,
    temperature: float = 0.1,
    label_variance: float = 10.0,
) -> Tensor:
    """Sequence contrast loss between the two views of each video.

    Args:
        embs: (B, 2, T, D) L2-normalised projections of the two views.
        seq_lens: (B, 2) length of the original video each view was sampled from.
        steps: (B, 2, T) frame index in the original video of each sampled frame.
        masks: (B, 2, T), 1 for real frames and 0 for padding; None means all real.
        temperature: softmax temperature tau of the similarities.
        label_variance: sigma^2 of the Gaussian prior over timestamp distance, in frames^2.

    Returns:
        Scalar loss, float32 at least (float64 in, float64 out).
    """
    if embs.dim() != 4 or embs.shape[1] != 2:
        raise ValueError(f"embs must be (B, 2, T, D), got {tuple(embs.shape)}")
    if steps.shape != embs.shape[:3] or seq_lens.shape != embs.shape[:2]:
        raise ValueError(
            f"steps must be (B, 2, T) and seq_lens (B, 2) for embs {tuple(embs.shape)}, "
            f"got {tuple(steps.shape)} and {tuple(seq_lens.shape)}"
        )
    if masks is not None and masks.shape != embs.shape[:3]:
        raise ValueError(f"masks must be (B, 2, T), got {tuple(masks.shape)}")
    # exp(1/tau) and sums over many frames lose too much in bf16/fp16: always at least float32,
    # also under an enclosing autocast, which would otherwise run the matmuls in half precision.
    with torch.autocast(device_type=embs.device.type, enabled=False):
        return _scl(embs, seq_lens, steps, masks, temperature, label_variance)


def _scl(
    embs: Tensor,
    seq_lens: Tensor,
    steps: Tensor,
    masks: Tensor | None,
    temperature: float,
    label_variance: float,
) -> Tensor:
    dtype = torch.promote_types(embs.dtype, torch.float32)
    batch, views, length, dim = embs.shape
    n = batch * views * length
    # One row per frame of the batch, (video, view, frame) order. Everything below is (n, n) over the
    # whole batch, as in the authors' code: their weight matrix spans it, and the same sums in the
    # same order reproduce their float32 gradients even where those are mostly rounding noise.
    z = embs.to(dtype).reshape(n, dim)
    mask = torch.ones(n, dtype=dtype, device=embs.device) if masks is None else masks.reshape(n).to(dtype)
    block = torch.arange(batch * views, device=embs.device).repeat_interleave(length)  # video * 2 + view
    partner = block[:, None] == (block ^ 1)[None, :]  # the other view of the same video
    both_real = (mask[:, None] * mask[None, :]) != 0

    # Prior over timestamp distance. The distance dtype follows the authors' arithmetic (integer
    # steps and float32 lengths give float32), so the Gaussian underflows to 0 exactly where theirs
    # does: a row whose partners are all > ~45 frames away then has no target.
    t = steps.reshape(n)
    lens = seq_lens.float()[..., None].expand(batch, views, length).reshape(n)
    # i's timestamp rescaled to the partner's video length; for two views of one video L_i = L_j.
    dist = (t[:, None] / lens[:, None] * lens[None, :] - t[None, :]).abs()
    dist = dist.masked_fill(~both_real, PAD_DISTANCE)
    prior = torch.exp(-dist.square() / (2 * label_variance)).to(dtype)
    prior = prior * partner
    # Normalise over the partner view: sum each row's T-long partner block. A row with no weight at
    # all (a padded frame, or every partner too far away) gets no target: 0 / 0 -> 0.
    norm = prior.view(n, batch * views, length).sum(-1).gather(1, (block ^ 1)[:, None])
    target = torch.nan_to_num(prior / norm, nan=0.0)

    # p_ij = exp(s_ij) / sum_k w_ik exp(s_ik). "single_noself": only the partner view's frames are
    # candidates (w = 1), not the own view or other videos (w = 0); any pair involving padding gets
    # w = 1e-6, across the whole batch. No max is subtracted: |s| <= 1 / tau for unit vectors.
    logits = z @ z.T / temperature
    weight = torch.where(both_real, partner.to(dtype), PAD_WEIGHT)
    exp_logits = torch.exp(logits)
    p = exp_logits / (weight * exp_logits).sum(dim=1, keepdim=True)

    # KL(y || p + eps) per pair, summed over real pairs. Both views' rows are in the sum, so dividing
    # by the number of real frames averages the two directions.
    kl = F.kl_div(torch.log(p + LOG_EPS), target, reduction="none")
    return (kl * both_real).sum() / mask.sum().clamp_min(1)


@dataclass
class VideoPairs:
    """Cross-video view pairs in the layout ``scl_loss`` takes.

    ``index[p] = (a, b)``: view 0 of video a was paired with view 1 of video b. Video a's steps
    are its frames' DTW-matched timestamps on b's timeline, and both lengths are b's, so the prior
    is centred on the aligned frame in both directions.
    """

    embs: Tensor  # (P, 2, T, D), differentiable
    seq_lens: Tensor  # (P, 2)
    steps: Tensor  # (P, 2, T), float
    masks: Tensor  # (P, 2, T)
    index: Tensor  # (P, 2) batch indices of the two videos


def weak_pairs(
    embs: Tensor,
    seq_lens: Tensor,
    steps: Tensor,
    masks: Tensor | None,
    labels: Tensor | Sequence[int],
    *,
    metric: Metric = "sqeuclidean",
    dtw_fn: Callable[[np.ndarray, np.ndarray], Any] | None = None,
) -> VideoPairs:
    """Pair the videos of a batch that share a video-level label, aligned by DTW.

    Every unordered pair {a, b} (a < b) with ``labels[a] == labels[b] >= 0`` gives one pair
    (view 0 of a, view 1 of b): different augmentations, as in the self-supervised pairs. DTW on
    the detached, current embeddings of their real frames maps each frame of a to frames of b;
    the mean of their timestamps becomes a's step, the centre of its Gaussian prior.
    A negative label means "unlabelled": never paired.

    Args:
        embs, seq_lens, steps, masks: as for ``scl_loss``.
        labels: (B,) integer video-level labels.
        metric: DTW frame distance.
        dtw_fn: ``dtw(x, y) -> Alignment`` with ``path_a``, ``path_b``; default
            ``carl_core.align.dtw`` with ``metric``.
    """
    if dtw_fn is None:
        from carl_core.align import dtw  # lazy: only the weak form needs the aligner

        def dtw_fn(x: np.ndarray, y: np.ndarray) -> Any:
            return dtw(x, y, metric=metric)

    batch, _, num_steps, _ = embs.shape
    labels_np = np.asarray(torch.as_tensor(labels).cpu()).reshape(-1)
    if labels_np.shape[0] != batch:
        raise ValueError(f"labels must have one entry per video ({batch}), got {labels_np.shape[0]}")
    real = (torch.ones_like(steps, dtype=torch.bool) if masks is None else masks != 0).cpu().numpy()
    feats = embs.detach().float().cpu().numpy()
    steps_np = steps.detach().cpu().numpy().astype(np.float64)

    index, warped = [], []
    for a in range(batch):
        for b in range(a + 1, batch):
            if labels_np[a] < 0 or labels_np[a] != labels_np[b]:
                continue
            rows, cols = np.flatnonzero(real[a, 0]), np.flatnonzero(real[b, 1])
            if rows.size == 0 or cols.size == 0:
                continue
            path_a, path_b = _warp_path(feats[a, 0, rows], feats[b, 1, cols], dtw_fn)
            # Mean timestamp of the partner frames each frame of a is matched to.
            total = np.bincount(path_a, weights=steps_np[b, 1, cols[path_b]], minlength=rows.size)
            count = np.bincount(path_a, minlength=rows.size)
            t = np.zeros(num_steps)
            t[rows] = total / np.maximum(count, 1)
            index.append((a, b))
            warped.append(t)

    device = embs.device
    if not index:
        empty = torch.zeros(0, 2, num_steps, device=device)
        return VideoPairs(
            embs=embs[:0],
            seq_lens=seq_lens[:0],
            steps=empty,
            masks=empty.bool(),
            index=torch.zeros(0, 2, dtype=torch.long),
        )
    idx = torch.tensor(index, dtype=torch.long)
    ia, ib = idx[:, 0].to(device), idx[:, 1].to(device)
    real_t = torch.as_tensor(real, device=device)
    t_a = torch.as_tensor(np.stack(warped), dtype=torch.float32, device=device)
    # Both views on b's timeline: d_ij = |t'_i - t_j| in both directions.
    len_b = seq_lens[ib, 1]
    return VideoPairs(
        embs=torch.stack([embs[ia, 0], embs[ib, 1]], dim=1),
        seq_lens=torch.stack([len_b, len_b], dim=1),
        steps=torch.stack([t_a, steps[ib, 1].to(torch.float32)], dim=1),
        masks=torch.stack([real_t[ia, 0], real_t[ib, 1]], dim=1),
        index=idx,
    )


def _warp_path(
    x: np.ndarray, y: np.ndarray, dtw_fn: Callable[[np.ndarray, np.ndarray], Any]
) -> tuple[np.ndarray, np.ndarray]:
    """DTW path between x (n, d) and y (m, d)."""
    n, m = len(x), len(y)
    if n == 1 or m == 1:
        # The only monotone path: every frame meets the lone frame (aligners may refuse n = 1).
        k = max(n, m)
        return np.arange(k) * (n > 1), np.arange(k) * (m > 1)
    path = dtw_fn(x, y)
    return np.asarray(path.path_a), np.asarray(path.path_b)


def weak_scl_loss(
    embs: Tensor,
    seq_lens: Tensor,
    steps: Tensor,
    masks: Tensor | None,
    labels: Tensor | Sequence[int],
    *,
    temperature: float = 0.1,
    label_variance: float = 10.0,
    metric: Metric = "sqeuclidean",
    dtw_fn: Callable[[np.ndarray, np.ndarray], Any] | None = None,
) -> Tensor:
    """SCL over the cross-video pairs of ``weak_pairs``; add it to ``scl_loss`` on the views.

    Returns 0 (still attached to the graph) when no two videos of the batch share a label.
    """
    pairs = weak_pairs(embs, seq_lens, steps, masks, labels, metric=metric, dtw_fn=dtw_fn)
    if pairs.index.shape[0] == 0:
        return embs.sum().to(torch.promote_types(embs.dtype, torch.float32)) * 0.0
    return scl_loss(
        pairs.embs,
        pairs.seq_lens,
        pairs.steps,
        pairs.masks,
        temperature=temperature,
        label_variance=label_variance,
    )
