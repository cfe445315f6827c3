"""Tests for carl_core.metrics against loop-based re-typings of the authors' evaluation code.

The ``ref_*`` functions below retype minghchen/CARL_code's ``evaluation/*.py`` (logging and
summary writers left out); the library must give the same numbers on the same embeddings.
"""

from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import pytest
import sklearn
from scipy import optimize
from scipy.spatial.distance import cdist
from scipy.stats import kendalltau
from sklearn.linear_model import LinearRegression, LogisticRegression

from carl_core import metrics
from carl_core.errors import CarlError, ConfigError, DataError
from carl_core.metrics import (
    ActionSplits,
    evaluate_all,
    evaluate_per_action,
    kendalls_tau,
    phase_classification,
    phase_progression,
    retrieval_ap,
)

# --------------------------------------------------------------------------- references


def ref_kendalls_tau(embs_list, stride, dist_type):
    """KendallsTau.get_kendalls_tau."""
    num_seqs = len(embs_list)
    taus = np.zeros(num_seqs * (num_seqs - 1))
    idx = 0
    for i in range(num_seqs):
        query_feats = embs_list[i][::stride]
        for j in range(num_seqs):
            if i == j:
                continue
            candidate_feats = embs_list[j][::stride]
            dists = cdist(query_feats, candidate_feats, dist_type)
            nns = np.argmin(dists, axis=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy's small-sample warning for one-frame queries
                taus[idx] = kendalltau(np.arange(len(nns)), nns).correlation
            idx += 1
    taus = taus[~np.isnan(taus)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of empty slice, as in theirs
        return np.mean(taus)


def ref_get_ap(embs_list, label_list, k, stride, dist_type):
    """Retrieval.get_AP."""
    num_seqs = len(embs_list)
    precisions = np.zeros(num_seqs)
    idx = 0
    for i in range(num_seqs):
        query_feats = embs_list[i][::stride]
        query_label = label_list[i][::stride]
        candidate_feats = []
        candidate_label = []
        for j in range(num_seqs):
            if i != j:
                candidate_feats.append(embs_list[j][::stride])
                candidate_label.append(label_list[j][::stride])
        candidate_feats = np.concatenate(candidate_feats, axis=0)
        candidate_label = np.concatenate(candidate_label, axis=0)
        dists = cdist(query_feats, candidate_feats, dist_type)
        topk = np.argsort(dists, axis=1)[:, :k]
        ap = 0
        for t in range(len(query_feats)):
            ap += np.mean(int(query_label[t]) == candidate_label[topk[t]])
        precisions[idx] = ap / len(query_feats)
        idx += 1  # noqa: SIM113 (their loop, as they wrote it)
    precisions = precisions[~np.isnan(precisions)]
    return np.mean(precisions)


def ref_logistic(**kw):
    # Theirs passes multi_class='multinomial'; scikit-learn >= 1.8 removed it and fits the
    # multinomial model by default for 3+ classes, so the reference only runs those there.
    if "multi_class" in LogisticRegression().get_params():
        kw["multi_class"] = "multinomial"
    return LogisticRegression(max_iter=100000, solver="lbfgs", verbose=0, **kw)


def ref_classification(train_dataset, val_dataset, fractions):
    """Classification.evaluate (model_type='linear'), returning every fraction's val accuracy."""
    val_embs = np.concatenate(val_dataset["embs"])
    val_labels = np.concatenate(val_dataset["labels"])
    num_samples = len(train_dataset["embs"])
    out = {}
    for fraction in fractions:
        num_samples_used = max(1, int(fraction * num_samples))
        train_embs = np.concatenate(train_dataset["embs"][:num_samples_used])
        train_labels = np.concatenate(train_dataset["labels"][:num_samples_used])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            lin_model = ref_logistic()
            lin_model.fit(train_embs, train_labels)
        out[fraction] = lin_model.score(val_embs, val_labels)
    return out


class RefVectorRegression(sklearn.base.BaseEstimator):
    """event_completion.VectorRegression."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, x, y):
        _, m = y.shape
        self.estimators_ = [sklearn.base.clone(self.estimator).fit(x, y[:, i]) for i in range(m)]
        return self

    def score(self, x, y):
        res = [est.score(x, y[:, i]) for i, est in enumerate(self.estimators_)]
        return np.mean(res)


def ref_regression_labels_for_class(labels, class_idx):
    transition_frame = np.argwhere(labels == class_idx)[-1, 0]
    return (np.arange(float(len(labels))) - transition_frame) / len(labels)


def ref_get_targets(all_class_labels, num_classes):
    out = []
    for class_labels in all_class_labels:
        cols = [ref_regression_labels_for_class(class_labels, i) for i in range(num_classes - 1)]
        out.append(np.stack(cols, axis=1))
    return out


def ref_event_completion(train_dataset, val_dataset, num_classes, fractions):
    """EventCompletion.evaluate with fit_model, returning every fraction's val score."""
    val_embs = np.concatenate(val_dataset["embs"], axis=0)
    val_labels = np.concatenate(ref_get_targets(val_dataset["labels"], num_classes), axis=0)
    num_samples = len(train_dataset["embs"])
    out = {}
    for fraction in fractions:
        num_samples_used = max(1, int(fraction * num_samples))
        train_embs = np.concatenate(train_dataset["embs"][:num_samples_used], axis=0)
        train_labels = np.concatenate(
            ref_get_targets(train_dataset["labels"][:num_samples_used], num_classes), axis=0
        )
        lin_model = RefVectorRegression(LinearRegression())
        lin_model.fit(train_embs, train_labels)
        out[fraction] = lin_model.score(val_embs, val_labels)
    return out


# --------------------------------------------------------------------------- data


def phase_videos(rng, n_videos, num_classes, dim=8, lengths=(12, 40), noise=0.5, dtype=np.float64):
    """Videos whose frames run through phases 0..num_classes-1 in order, each phase >= 2 frames.

    Phase centroids depend on (num_classes, dim) only, so train and validation sets share them.
    """
    world = np.random.default_rng(1000 * num_classes + dim)
    centroids = world.standard_normal((num_classes, dim))
    direction = world.standard_normal(dim)
    embs, labels = [], []
    for _ in range(n_videos):
        length = int(rng.integers(max(lengths[0], 2 * num_classes), lengths[1] + 1))
        cuts = np.sort(rng.choice(np.arange(1, length // 2), num_classes - 1, replace=False)) * 2
        lab = np.zeros(length, dtype=np.int64)
        for c in cuts:
            lab[c:] += 1
        progress = np.arange(length) / length
        e = centroids[lab] + progress[:, None] * direction + noise * rng.standard_normal((length, dim))
        embs.append(e.astype(dtype))
        labels.append(lab)
    return embs, labels


def random_videos(rng, n_videos, num_classes, dim=6, lengths=(8, 30)):
    """Unstructured embeddings with ordered phase labels."""
    _, labels = phase_videos(rng, n_videos, num_classes, dim, lengths)
    return [rng.standard_normal((len(lab), dim)) for lab in labels], labels


def tied_videos(rng, n_videos, num_classes):
    """Integer-valued 2-d embeddings: many exactly equal distances, so tie-breaking matters."""
    _, labels = phase_videos(rng, n_videos, num_classes, 2, (10, 30))
    return [np.round(rng.standard_normal((len(lab), 2))) for lab in labels], labels


# --------------------------------------------------------------------------- equality with theirs


@pytest.mark.parametrize("kind", ["phase", "random", "tied", "float32"])
@pytest.mark.parametrize("stride,distance", [(5, "sqeuclidean"), (2, "sqeuclidean"), (1, "cosine")])
def test_tau_and_retrieval_equal_reference(kind, stride, distance):
    rng = np.random.default_rng(zlib.crc32(f"{kind}{stride}{distance}".encode()))
    if kind == "phase":
        embs, labels = phase_videos(rng, 7, 4)
    elif kind == "random":
        embs, labels = random_videos(rng, 6, 3)
    elif kind == "tied":
        embs, labels = tied_videos(rng, 6, 3)
    else:
        embs, labels = phase_videos(rng, 6, 3, dtype=np.float32)
    if kind == "tied" and distance == "cosine":
        embs = [e + 0.5 for e in embs]  # no zero vectors: cosine distance is undefined there
    tau = kendalls_tau(embs, stride=stride, distance=distance)
    assert tau == ref_kendalls_tau(embs, stride, distance)
    for k in (1, 5, 10, 15, 1000):  # 1000: more than all candidates
        ap = retrieval_ap(embs, labels, k, stride=stride, distance=distance)
        assert ap == ref_get_ap(embs, labels, k, stride, distance)


@pytest.mark.parametrize("n", [1, 2, 3, 17, 60, 530])  # 530: past the vectorised size, scipy per pair
def test_vectorised_tau_is_scipys_bit_for_bit(n, monkeypatch):
    monkeypatch.setattr(metrics, "_TAU_PAIRS_PER_CHUNK", 500)  # several chunks even for small n
    rng = np.random.default_rng(n)
    cols = [rng.integers(0, high, n) for high in (1, 2, 3, n + 1, 4 * n + 1) for _ in range(4)]
    cols += [np.arange(n), np.arange(n)[::-1], np.sort(rng.integers(0, 5, n))]
    nns = np.stack(cols, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's small-sample warning at n = 1
        expected = np.array([kendalltau(np.arange(n), c).correlation for c in cols])
    np.testing.assert_array_equal(metrics._tau_b_vs_order(nns), expected)


def test_several_k_at_once_equal_one_at_a_time():
    rng = np.random.default_rng(15)
    embs, labels = tied_videos(rng, 5, 3)
    aps = metrics.retrieval_aps(embs, labels, (15, 1, 5), stride=2)
    assert list(aps) == [15, 1, 5]
    assert aps == {k: retrieval_ap(embs, labels, k, stride=2) for k in (15, 1, 5)}
    only = evaluate_all(embs, labels, embs, labels, 3, tasks=["retrieval"])
    assert set(only) == {"retrieval", "reported"} and only["reported"] == {"retrieval": only["retrieval"][5]}


@pytest.mark.parametrize("num_classes", [3, 5])
def test_classification_equals_reference(num_classes):
    rng = np.random.default_rng(num_classes)
    train = phase_videos(rng, 10, num_classes, noise=1.5)
    val = phase_videos(rng, 5, num_classes, noise=1.5)
    fractions = (0.1, 0.5, 1.0)
    ours = phase_classification(*train, *val, fractions=fractions)
    ref = ref_classification(
        {"embs": train[0], "labels": train[1]}, {"embs": val[0], "labels": val[1]}, fractions
    )
    assert list(ours) == list(fractions)
    for f in fractions:
        assert ours[f] == pytest.approx(ref[f], abs=1e-12)
    assert 0.3 < ours[1.0] < 1.0  # a real fit, not a degenerate one


@pytest.mark.parametrize("num_classes,kind", [(2, "phase"), (4, "phase"), (3, "random"), (6, "phase")])
def test_progression_equals_reference(num_classes, kind):
    rng = np.random.default_rng(10 + num_classes)
    make = phase_videos if kind == "phase" else random_videos
    train = make(rng, 9, num_classes)
    val = make(rng, 4, num_classes)
    fractions = (0.1, 0.5, 1.0)
    ours = phase_progression(*train, *val, num_classes, fractions=fractions)
    ref = ref_event_completion(
        {"embs": train[0], "labels": train[1]}, {"embs": val[0], "labels": val[1]}, num_classes, fractions
    )
    for f in fractions:
        assert ours[f] == pytest.approx(ref[f], rel=1e-12, abs=1e-12)


def test_fractions_take_the_first_videos_in_order():
    rng = np.random.default_rng(3)
    train = phase_videos(rng, 10, 3, noise=1.5)
    val = phase_videos(rng, 4, 3, noise=1.5)
    ours = phase_classification(*train, *val, fractions=(0.35, 1.0))
    first3 = phase_classification(train[0][:3], train[1][:3], *val)  # int(0.35 * 10) = 3
    assert ours[0.35] == first3[1.0]
    last3 = phase_classification(train[0][-3:], train[1][-3:], *val)
    assert ours[0.35] != last3[1.0]  # the data differ enough that the choice shows
    prog = phase_progression(*train, *val, 3, fractions=(0.01,))  # max(1, int(0.1)) = 1 video
    assert prog[0.01] == phase_progression(train[0][:1], train[1][:1], *val, 3)[1.0]


# --------------------------------------------------------------------------- two-class classifier


def _softmax2_fit(x, y, tol):
    """The two-class multinomial objective written out: mean softmax loss + ||W||^2 / (2 n)."""
    n, d = x.shape
    onehot = np.stack([y == 0, y == 1], axis=1).astype(float)

    def fun(p):
        w = p.reshape(2, d + 1)
        z = x @ w[:, :-1].T + w[:, -1]
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        prob = np.exp(z - lse[:, None])
        loss = np.mean(lse - (z * onehot).sum(axis=1)) + (w[:, :-1] ** 2).sum() / (2 * n)
        g = (prob - onehot).T / n
        grad = np.concatenate([g @ x + w[:, :-1] / n, g.sum(axis=1, keepdims=True)], axis=1)
        return loss, grad.ravel()

    res = optimize.minimize(fun, np.zeros(2 * (d + 1)), jac=True, method="L-BFGS-B", options={"gtol": tol})
    return res.x.reshape(2, d + 1)[1]


def test_two_class_classifier_is_the_multinomial_one():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 6))
    w_true = rng.standard_normal(6)
    y = (x @ w_true + 0.8 * rng.standard_normal(400) > 0.3).astype(np.int64)
    x_val = rng.standard_normal((300, 6))
    # Ours stops at gtol 1e-4 like theirs; the exact optimum of their objective is close by ...
    row = _softmax2_fit(x, y, 1e-12)
    exact = np.where(x_val @ row[:-1] + row[-1] > 0, 1, 0)
    pred = metrics._multinomial_binary_predict(x, y, x_val)
    assert np.mean(pred == exact) >= 0.99
    # ... and sklearn's binary model (what dropping multi_class gives) has another optimum.
    binary = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(x, y)
    assert np.abs(binary.coef_[0] - 2 * row[:-1]).max() > 1e-2
    scaled = LogisticRegression(C=2.0, tol=1e-12, max_iter=10000).fit(x, y)
    assert np.abs(scaled.coef_[0] - 2 * row[:-1]).max() < 1e-5  # same optimum as multinomial, C=1
    acc = phase_classification([x], [y], [x_val], [exact])[1.0]
    assert acc == np.mean(pred == exact)


def test_two_class_labels_keep_their_values():
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.standard_normal((30, 3)) + 3, rng.standard_normal((30, 3)) - 3])
    y = np.repeat([3, 7], 30)
    assert set(metrics._multinomial_binary_predict(x, y, x)) == {3, 7}
    assert phase_classification([x], [y], [x], [y])[1.0] == 1.0


# --------------------------------------------------------------------------- known answers


def test_identical_videos_tau_one_and_reversed_minus_one():
    rng = np.random.default_rng(7)
    a = np.cumsum(rng.standard_normal((51, 4)), axis=0)  # a random walk: distinct frames
    assert kendalls_tau([a, a.copy(), a.copy()], stride=5) == 1.0
    assert kendalls_tau([a, a[::-1]], stride=5) == -1.0
    assert kendalls_tau([a, a[::-1]], stride=1, distance="euclidean") == -1.0


def test_perfect_embeddings_score_perfectly():
    rng = np.random.default_rng(8)
    embs, labels = phase_videos(rng, 8, 4, noise=0.0)
    embs = [10 * np.eye(4)[lab] + 1e-3 * rng.standard_normal((len(lab), 4)) for lab in labels]
    assert phase_classification(embs[:5], labels[:5], embs[5:], labels[5:])[1.0] == 1.0
    assert retrieval_ap(embs, labels, 5, stride=1) == 1.0
    # Embeddings that are the progress targets themselves: every regression is exact.
    targets = [metrics._progress_targets(lab, 4, "test", i) for i, lab in enumerate(labels)]
    r2 = phase_progression(targets[:5], labels[:5], targets[5:], labels[5:], 4)[1.0]
    assert r2 == pytest.approx(1.0, abs=1e-9)


def test_evaluate_all_reports_like_evaluate_py():
    rng = np.random.default_rng(9)
    train = phase_videos(rng, 8, 3, noise=1.0)
    val = phase_videos(rng, 5, 3, noise=1.0)
    seen = []
    out = evaluate_all(*train, *val, 3, protocol="pouring", on_progress=lambda *a: seen.append(a))
    assert out["kendalls_tau"] == ref_kendalls_tau(val[0], 5, "sqeuclidean")
    assert out["retrieval"] == {k: ref_get_ap(*val, k, 5, "sqeuclidean") for k in (5, 10, 15)}
    ref_cls = ref_classification(
        {"embs": train[0], "labels": train[1]}, {"embs": val[0], "labels": val[1]}, (0.1, 0.5, 1.0)
    )
    assert out["classification"] == pytest.approx(ref_cls, abs=1e-12)
    ref_prog = ref_event_completion(
        {"embs": train[0], "labels": train[1]}, {"embs": val[0], "labels": val[1]}, 3, (0.1, 0.5, 1.0)
    )
    assert out["progression"] == pytest.approx(ref_prog, rel=1e-12)
    assert out["reported"] == {
        "kendalls_tau": out["kendalls_tau"],
        "retrieval": out["retrieval"][5],
        "classification": out["classification"][1.0],
        "progression": out["progression"][1.0],
    }
    assert seen[0] == (0, 3, "evaluating alignment") and seen[-1][:2] == (3, 3)


def test_evaluate_all_drops_unlabelled_frames_as_their_loader():
    rng = np.random.default_rng(10)
    train = phase_videos(rng, 5, 3)
    val = phase_videos(rng, 4, 3)
    marked = ([e.copy() for e in val[0]], [lab.copy() for lab in val[1]])
    for e, lab in zip(*marked):
        lab[-3:] = -1  # their dataloader marks unlabelled frames -1, evaluate.py drops them
        e[-3:] = 1e6
    kept = ([e[:-3] for e in val[0]], [lab[:-3] for lab in val[1]])
    a = evaluate_all(*train, *marked, 3, protocol="penn_action")
    b = evaluate_all(*train, *kept, 3, protocol="penn_action")
    assert a == b
    assert list(a["classification"]) == [1.0]  # PennAction: all training videos only


def test_per_action_mean_is_their_average():
    rng = np.random.default_rng(11)
    actions = {}
    for name, k in (("bench_press", 2), ("squat", 4), ("bowl", 3)):
        actions[name] = ActionSplits(*phase_videos(rng, 6, k), *phase_videos(rng, 4, k), num_classes=k)
    out = evaluate_per_action(actions, protocol="penn_action")
    assert list(out["per_action"]) == list(actions)
    for task in ("kendalls_tau", "retrieval", "classification", "progression"):
        vals = [out["per_action"][n]["reported"][task] for n in actions]
        assert out["mean"]["reported"][task] == sum(vals) / 3
    squat = evaluate_all(*phase_videos(np.random.default_rng(0), 1, 4), *phase_videos(rng, 2, 4), 4)
    assert set(squat) == set(out["mean"])
    per_k = [out["per_action"][n]["retrieval"][10] for n in actions]
    assert out["mean"]["retrieval"][10] == sum(per_k) / 3
    assert metrics.NUM_PHASES["squat"] == 4 and len(metrics.PENN_ACTIONS) == 13


# --------------------------------------------------------------------------- edge cases


def test_one_frame_and_short_videos():
    rng = np.random.default_rng(12)
    one = [rng.standard_normal((1, 4)) for _ in range(4)]
    labels = [np.array([i % 2]) for i in range(4)]
    assert math.isnan(kendalls_tau(one))  # every pair undefined: theirs averages nothing, NaN
    assert math.isnan(ref_kendalls_tau(one, 5, "sqeuclidean"))
    assert retrieval_ap(one, labels, 2) == ref_get_ap(one, labels, 2, 5, "sqeuclidean")
    short = [rng.standard_normal((n, 4)) for n in (1, 2, 3, 4, 6, 11)]  # mostly shorter than stride
    short_labels = [np.arange(len(e)) % 3 for e in short]
    assert kendalls_tau(short) == ref_kendalls_tau(short, 5, "sqeuclidean")
    assert not math.isnan(kendalls_tau(short))  # 11 frames at stride 5 give three frames
    for k in (1, 3, 20):
        assert retrieval_ap(short, short_labels, k) == ref_get_ap(short, short_labels, k, 5, "sqeuclidean")


def test_nan_taus_are_dropped_like_theirs():
    rng = np.random.default_rng(13)
    embs, _ = phase_videos(rng, 4, 3, noise=0.2, lengths=(30, 30))
    embs.append(np.ones((30, 8)))  # a frozen video: its pairs have an undefined tau
    tau = kendalls_tau(embs, stride=2)
    assert tau == ref_kendalls_tau(embs, 2, "sqeuclidean")
    assert not math.isnan(tau)
    assert tau == kendalls_tau(embs[:4], stride=2)  # the NaN pairs are gone, not counted as 0
    taus = [kendalltau(np.arange(15), np.argmin(cdist(embs[i][::2], embs[j][::2], "sqeuclidean"), 1))[0]
            for i in range(5) for j in range(5) if i != j]  # fmt: skip
    assert sum(np.isnan(taus)) == 8  # exactly the frozen video's pairs
    assert tau == pytest.approx(np.nanmean(taus), rel=1e-12)
    assert tau != pytest.approx(np.nansum(taus) / 20, rel=1e-6)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: kendalls_tau([]), "no videos"),
        (lambda: kendalls_tau([np.zeros((5, 3))]), "at least two"),
        (lambda: kendalls_tau([np.zeros((5, 3)), np.zeros(5)]), "2-D"),
        (lambda: kendalls_tau([np.zeros((5, 3)), np.zeros((5, 4))]), "same model"),
        (lambda: kendalls_tau([np.zeros((5, 3)), np.zeros((0, 3))]), "no \\(labelled\\) frames"),
        (lambda: kendalls_tau([np.zeros((5, 3)), np.full((5, 3), np.nan)]), "NaN"),
        (lambda: retrieval_ap([np.zeros((5, 3))] * 2, [np.zeros(5, int)], 5), "1 label arrays"),
        (lambda: retrieval_ap([np.zeros((5, 3))] * 2, [np.zeros(5, int), np.zeros(4, int)], 5), "one phase"),
        (lambda: retrieval_ap([np.zeros((5, 3))] * 2, [np.full(5, 0.5)] * 2, 5), "integers"),
        (lambda: retrieval_ap([np.zeros((5, 3))] * 2, [-np.ones(5, int)] * 2, 5), "negative"),
        (lambda: phase_classification([np.zeros((4, 3))], [np.zeros(4, int)], [], []), "no videos"),
        (
            lambda: phase_classification([np.zeros((4, 3))], [np.zeros(4, int)], [np.ones((2, 3))], [[0, 1]]),
            "only phase 0",
        ),
        (
            lambda: phase_classification([np.zeros((4, 3))], [np.arange(4)], [np.ones((2, 2))], [[0, 1]]),
            "same model",
        ),
        (
            lambda: phase_progression([np.zeros((4, 3))], [[0, 0, 2, 2]], [np.ones((2, 3))], [[0, 1]], 3),
            "no frame of phase 1",
        ),
        (lambda: evaluate_all([np.zeros((4, 3))], [], [np.ones((2, 3))], [[0, 1]], 2), "0 label arrays"),
        (lambda: evaluate_per_action({}), "no actions"),
    ],
)
def test_bad_input_raises_data_error(call, match):
    with pytest.raises(DataError, match=match):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: kendalls_tau([np.zeros((5, 3))] * 2, stride=0),
        lambda: kendalls_tau([np.zeros((5, 3))] * 2, distance="nonsense"),
        lambda: retrieval_ap([np.zeros((5, 3))] * 2, [np.zeros(5, int)] * 2, k=0),
        lambda: phase_classification([np.zeros((4, 3))], [np.arange(4)], [np.ones((2, 3))], [[0, 1]], (0.0,)),
        lambda: phase_progression([np.zeros((4, 3))], [np.arange(4)], [np.ones((2, 3))], [[0, 1]], 1),
        lambda: evaluate_all([np.zeros((4, 3))], [np.arange(4)], [np.ones((2, 3))], [[0, 1]], 2, "nope"),
        lambda: evaluate_all([np.zeros((4, 3))], [np.arange(4)], [np.ones((2, 3))], [[0, 1]], 2, tasks=["x"]),
    ],
)
def test_bad_options_raise_config_error(call):
    with pytest.raises(ConfigError):
        call()
    assert issubclass(ConfigError, CarlError) and issubclass(DataError, CarlError)


def test_per_action_error_names_the_action():
    rng = np.random.default_rng(14)
    good = ActionSplits(*phase_videos(rng, 4, 2), *phase_videos(rng, 3, 2), num_classes=2)
    bad = ActionSplits(*phase_videos(rng, 4, 3), [np.zeros((3, 8))], [[0, 0, 0]], num_classes=3)
    with pytest.raises(DataError, match="'golf_swing'"):
        evaluate_per_action({"pushup": good, "golf_swing": bad})


# --------------------------------------------------------------------------- FineGym's SGD classifier


def _finegym_like(seed: int, n_videos: int, num_classes: int = 99, dim: int = 128):
    """Event videos whose frames are noisy class centroids, with unlabelled (-1) stretches."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)).astype(np.float32)
    classes = rng.choice(num_classes, size=6, replace=False)
    embs, labels = [], []
    for _ in range(n_videos):
        n = int(rng.integers(20, 60))
        lab = np.full(n, -1, np.int64)
        for start in range(0, n, 12):
            lab[start + 3 : start + 12] = rng.choice(classes)
        e = centres[np.maximum(lab, 0)] + rng.normal(scale=1.5, size=(n, dim)).astype(np.float32)
        embs.append(e / np.linalg.norm(e, axis=1, keepdims=True))
        labels.append(lab.astype(np.float32))  # their frame_label: a float tensor with -1
    return embs, labels


def test_sgd_classifier_equals_evaluate_finegym():
    import torch

    from carl_core.metrics import SGDProbe, sgd_classification
    from tests.authors_reference import finegym_classification

    embs, labels = _finegym_like(0, 33)
    train_e, train_l, val_e, val_l = embs[:25], labels[:25], embs[25:], labels[25:]
    probe = SGDProbe(epochs=6)
    ours = sgd_classification(train_e, train_l, val_e, val_l, 99, probe, seed=3)
    state = torch.get_rng_state()
    torch.manual_seed(3)
    as_tensors = lambda es, ls: [(torch.from_numpy(e), torch.from_numpy(lab)) for e, lab in zip(es, ls)]  # noqa: E731
    theirs = finegym_classification(
        as_tensors(train_e, train_l), as_tensors(val_e, val_l), 99, probe.fractions, probe.lr, probe.epochs
    )
    torch.set_rng_state(state)
    assert set(ours) == set(theirs) == {0.1, 0.5, 1.0}
    for fraction in ours:
        assert ours[fraction] == pytest.approx(theirs[fraction], abs=1e-6), fraction
    assert 0.3 < ours[1.0] <= 1.0  # it learns: 6 classes, chance is 1/6
    assert ours != sgd_classification(train_e, train_l, val_e, val_l, 99, probe, seed=4)


def test_sgd_classifier_refuses_what_their_loop_cannot_train():
    from carl_core.metrics import SGDProbe, sgd_classification

    train_e, train_l = _finegym_like(0, 6)
    with pytest.raises(DataError, match="fewer than one batch"):
        sgd_classification(train_e, train_l, train_e, train_l, 99)
    ok = sgd_classification(train_e, train_l, train_e, train_l, 99, SGDProbe(epochs=2, videos_per_batch=3))
    assert set(ok) == {0.1, 0.5, 1.0}
    with pytest.raises(DataError, match="num_classes is 5"):
        sgd_classification(train_e, train_l, train_e, train_l, 5, SGDProbe(epochs=1, videos_per_batch=3))
