"""An Isolation Forest as arrays: fitted by scikit-learn, kept as its trees' nodes, scored by numpy.

A fitted ``IsolationForest`` scores a row by the mean depth at which its trees isolate it: each
tree is walked from its root (go left when ``x[feature] <= threshold``) to a leaf, whose value is
the leaf's depth plus the expected depth still needed to isolate the training rows that reached
it (``c(n)``). The score is ``2 ** (-mean / c(max_samples))``, in (0, 1], near 1 for a row
isolated at once. Those numbers are all the model is, so the state keeps, for every node of every
tree (trees back to back, children as indices into the whole):

- ``forest_left`` / ``forest_right``: the children (int32; -1 at a leaf);
- ``forest_feature``: the column a node splits on (int32; -1 at a leaf);
- ``forest_value``: the threshold at a split, the path value at a leaf (float64);
- ``forest_roots``: where each tree starts (int32), and ``forest_norm``, ``c(max_samples)``
  times the number of trees (the score's denominator).

As scikit-learn does, the row is compared in float32 (its trees' input type) with the float64
threshold, so the leaves reached, and the score, are scikit-learn's (tests compare them with
``score_samples``). A state is checked before it is walked: every child comes after its parent
(so a walk ends), lies in its tree, and no tree is deeper or larger than the params allow (so a
crafted state cannot make scoring cost more than the budget was told).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from warden_algos.interfaces import F64Array, InvalidInput

#: Rows walked through every tree at once: bounds the (rows x trees) index arrays to ~10 MiB.
_ROWS_PER_CHUNK = 4096 * 32


def max_depth(max_samples: int) -> int:
    """The depth scikit-learn limits each tree to (``ceil(log2(max_samples))``)."""
    return int(np.ceil(np.log2(max(max_samples, 2))))


def fit_forest(rows: F64Array, n_estimators: int, max_samples: int, seed: int) -> dict[str, Any]:
    """Fit scikit-learn's IsolationForest on ``rows`` and take its arrays."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(
        n_estimators=n_estimators,
        max_samples=min(max_samples, rows.shape[0]),
        contamination="auto",
        max_features=1.0,
        bootstrap=False,
        random_state=seed,
        n_jobs=1,
    ).fit(rows)
    return forest_arrays(forest)


def forest_arrays(forest: Any) -> dict[str, Any]:
    """The node arrays of a fitted ``IsolationForest`` (trained on every feature)."""
    from sklearn.ensemble._iforest import _average_path_length

    lefts, rights, features, values, roots = [], [], [], [], []
    offset = 0
    for tree, used in zip(forest.estimators_, forest.estimators_features_, strict=True):
        nodes = tree.tree_
        if not np.array_equal(np.asarray(used), np.arange(nodes.n_features)):
            raise ValueError("the forest was trained on a subset of features")
        left = nodes.children_left.astype(np.int64)
        leaf = left < 0
        depths = np.asarray(nodes.compute_node_depths(), dtype=np.float64)
        path = depths + _average_path_length(nodes.n_node_samples) - 1.0
        roots.append(offset)
        lefts.append(np.where(leaf, -1, left + offset))
        rights.append(np.where(leaf, -1, nodes.children_right.astype(np.int64) + offset))
        features.append(np.where(leaf, -1, nodes.feature.astype(np.int64)))
        values.append(np.where(leaf, path, nodes.threshold.astype(np.float64)))
        offset += left.shape[0]
    norm = len(forest.estimators_) * float(_average_path_length([forest.max_samples_])[0])
    return {
        "forest_left": np.concatenate(lefts).astype(np.int32),
        "forest_right": np.concatenate(rights).astype(np.int32),
        "forest_feature": np.concatenate(features).astype(np.int32),
        "forest_value": np.concatenate(values),
        "forest_roots": np.asarray(roots, dtype=np.int32),
        "forest_norm": np.asarray([norm], dtype=np.float64),
    }


def check_forest(model: dict[str, Any], features: int, n_estimators: int, max_samples: int) -> None:
    """Refuse node arrays that a fit with these params cannot have produced: a walk over them
    must end within ``max_depth`` steps and touch only existing nodes and columns."""
    left = np.asarray(model["forest_left"], dtype=np.int64)
    right = np.asarray(model["forest_right"], dtype=np.int64)
    feature = np.asarray(model["forest_feature"], dtype=np.int64)
    value = np.asarray(model["forest_value"], dtype=np.float64)
    roots = np.asarray(model["forest_roots"], dtype=np.int64)
    norm = np.asarray(model["forest_norm"], dtype=np.float64)
    n = left.shape[0]

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"the state's isolation forest is malformed: {why}", field="state")

    if not (left.ndim == right.ndim == feature.ndim == value.ndim == roots.ndim == 1):
        raise bad("its node arrays are not flat")
    if not (right.shape[0] == feature.shape[0] == value.shape[0] == n):
        raise bad("its node arrays differ in length")
    if roots.shape[0] != n_estimators or norm.shape != (1,) or not norm[0] > 0:
        raise bad(f"it does not hold {n_estimators} trees (n_estimators)")
    if not np.isfinite(value).all() or not np.isfinite(norm).all():
        raise bad("it holds non-finite values")
    if n_estimators and (roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= n):
        raise bad("its trees do not start in order")
    ends = np.append(roots[1:], n)
    if ((ends - roots) > 2 * max_samples - 1).any():
        raise bad(f"a tree has more nodes than {max_samples} samples make (max_samples)")
    tree_end = np.repeat(ends, ends - roots)
    index = np.arange(n)
    leaf = left < 0
    split = ~leaf
    if (leaf & ((left != -1) | (right != -1) | (feature != -1))).any():
        raise bad("a leaf has children or a feature")
    outside = (left <= index) | (right <= index) | (left >= tree_end) | (right >= tree_end)
    if (split & outside).any():
        raise bad("a child is not after its parent in its tree")
    if (split & ((feature < 0) | (feature >= features))).any():
        raise bad(f"a split names a column outside the {features} features")
    reached = np.zeros(n, dtype=bool)
    level = roots
    for _ in range(max_depth(max_samples) + 1):
        reached[level] = True
        inner = level[split[level]]
        level = np.concatenate([left[inner], right[inner]])
        if level.size == 0:
            break
    if level.size or not reached.all():
        raise bad(f"a tree is deeper than {max_samples} samples allow, or has unreachable nodes")


def forest_scores(model: dict[str, Any], rows: F64Array, depth: int) -> F64Array:
    """Each row's anomaly score, ``2 ** (-mean path / c(max_samples))`` (= scikit-learn's
    ``-score_samples``): higher is more anomalous. ``rows`` are complete (no NaN).

    Every row walks every tree in lockstep, one level per step, ``depth`` steps (no tree is
    deeper: ``check_forest``); a leaf points to itself, so a row that reached one stays there."""
    left = np.asarray(model["forest_left"], dtype=np.intp)
    right = np.asarray(model["forest_right"], dtype=np.intp)
    feature = np.asarray(model["forest_feature"], dtype=np.intp)
    value = np.asarray(model["forest_value"], dtype=np.float64)
    roots = np.asarray(model["forest_roots"], dtype=np.intp)
    norm = float(model["forest_norm"][0])
    leaf = left < 0
    itself = np.arange(left.shape[0])
    left = np.where(leaf, itself, left)
    right = np.where(leaf, itself, right)
    feature = np.where(leaf, 0, feature)
    # float32 first, as the trees saw their training rows; compared in float64 with thresholds.
    x = np.asarray(rows, dtype=np.float32).astype(np.float64)
    features = max(1, x.shape[1])
    out = np.empty(x.shape[0], dtype=np.float64)
    step = max(1, _ROWS_PER_CHUNK // max(1, roots.shape[0]))
    for start in range(0, x.shape[0], step):
        chunk = x[start : start + step]
        base = (np.arange(chunk.shape[0]) * features)[:, None]
        flat = chunk.reshape(-1)
        node = np.broadcast_to(roots, (chunk.shape[0], roots.shape[0]))
        for _ in range(depth):
            goes_left = flat[base + feature[node]] <= value[node]
            node = np.where(goes_left, left[node], right[node])
        out[start : start + step] = value[node].sum(axis=1)
    scores: F64Array = np.power(2.0, -out / norm)
    return scores
