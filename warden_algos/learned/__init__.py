"""Learned detectors' machinery: scikit-learn fits the models, numpy scores them from their arrays.

Why split fitting from scoring: a fitted scikit-learn estimator can only be stored by pickling it
(or through a format that rebuilds its objects), and nothing read from a bucket or a request may be
unpickled. What a fitted Isolation Forest, One-class SVM or MLP computes is a short function of a
few arrays (tree nodes; support vectors and weights; layer matrices). So ``fit`` runs
scikit-learn and keeps those arrays in the detector's state (safetensors, as every state), and
scoring evaluates the same function with numpy. The tests check the numpy scores against the
estimator's own (``score_samples``, ``decision_function``, ``predict``) on the same rows.

Consequences: scoring a stored model (``detect_next``, the streaming and batch-detect paths)
never imports scikit-learn, and a crafted state is arrays to check, not objects to build
(``check_*`` functions bound every index and shape before anything is evaluated).

- ``embedding``: one series as rows of features (lagged window and simple features);
- ``scaling``: the robust per-feature scaling stored in the model;
- ``forest``, ``svm``, ``mlp``: each model's arrays, how they are taken from the fitted
  estimator, checked and evaluated;
- ``detector``: the shared trainable detector (fit, score, threshold, stream).
"""
