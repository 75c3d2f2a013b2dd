"""Blocked prefix sums must equal the naive trailing-window sums, across block boundaries."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.rolling import trailing_window_sums


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 12_000), window=st.integers(1, 6_000), seed=st.integers(0, 2**32 - 1))
def test_trailing_window_sums_match_naive(n: int, window: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=n)
    prefix = np.r_[0.0, np.cumsum(x)]
    end = np.arange(n)
    naive = prefix[end] - prefix[np.maximum(end - window, 0)]
    np.testing.assert_allclose(trailing_window_sums(x, window), naive, atol=1e-9)


def test_stacked_series_share_one_pass() -> None:
    x = np.random.default_rng(1).normal(size=(3, 9000))
    stacked = trailing_window_sums(x, 50)
    for row in range(3):
        np.testing.assert_allclose(stacked[row], trailing_window_sums(x[row], 50))


def test_precision_holds_on_a_long_series_with_a_large_level() -> None:
    n, window = 1_000_000, 30
    x = 1e9 + np.random.default_rng(2).normal(size=n)
    got = trailing_window_sums(x - x.mean(), window)[-5:]
    want = [np.sum(x[i - window : i] - x.mean()) for i in range(n - 5, n)]
    np.testing.assert_allclose(got, want, atol=1e-6)
