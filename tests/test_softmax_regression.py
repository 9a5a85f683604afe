"""The classifier's own regression fit is scikit-learn's model, so its tuned C keeps its meaning."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from bot.nlu import softmax_regression


def _problem(rows: int = 300, classes: int = 5) -> tuple[np.ndarray, sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(7)
    targets = rng.integers(0, classes, rows)
    centres = rng.normal(size=(classes, 16))
    dense = centres[targets] + rng.normal(scale=1.5, size=(rows, 16))
    chars = sparse.random(rows, 200, density=0.05, format="lil", random_state=7)
    chars[np.arange(rows), targets] = 1.0  # one telling sparse column per class
    return dense, chars.tocsr(), targets


def test_fit_matches_scikit_learns_logistic_regression() -> None:
    dense, chars, targets = _problem()
    coef, intercept, iterations = softmax_regression.fit(
        dense, chars, targets, 5, C=2.0, max_iter=5000, threads=2)
    reference = LogisticRegression(C=2.0, max_iter=5000).fit(
        sparse.hstack([sparse.csr_matrix(dense), chars]).tocsr(), targets)
    assert iterations > 0
    np.testing.assert_allclose(coef, reference.coef_, atol=1e-3)
    np.testing.assert_allclose(intercept, reference.intercept_, atol=1e-3)


def test_stronger_regularisation_shrinks_the_weights() -> None:
    dense, chars, targets = _problem()
    loose, _, _ = softmax_regression.fit(dense, chars, targets, 5, C=10.0, max_iter=5000)
    tight, _, _ = softmax_regression.fit(dense, chars, targets, 5, C=0.01, max_iter=5000)
    assert np.abs(tight).sum() < np.abs(loose).sum() / 5


def test_a_weight_of_two_fits_as_the_example_given_twice() -> None:
    dense, chars, targets = _problem()
    weight = np.ones(len(targets))
    weight[:40] = 2.0
    weighted, w_icpt, _ = softmax_regression.fit(
        dense, chars, targets, 5, C=2.0, max_iter=5000, sample_weight=weight)
    twice = np.r_[np.arange(len(targets)), np.arange(40)]
    repeated, r_icpt, _ = softmax_regression.fit(
        dense[twice], chars[twice], targets[twice], 5, C=2.0, max_iter=5000)
    unweighted, _, _ = softmax_regression.fit(dense, chars, targets, 5, C=2.0, max_iter=5000)
    np.testing.assert_allclose(weighted, repeated, atol=1e-3)
    np.testing.assert_allclose(w_icpt, r_icpt, atol=1e-3)
    assert np.abs(weighted - unweighted).max() > 1e-2
