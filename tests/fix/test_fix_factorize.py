"""Factorisation maths against numpy oracles: exactness, low-rank recovery, energy, whitening."""

from __future__ import annotations

import numpy as np
import pytest
from fixmodels import low_rank_weight

from convaudit.fix.factorize import SecondMoment, compose, factorize
from convaudit.weightmath import energy_at, energy_curve, unfold


def test_full_rank_factorisation_is_exact() -> None:
    w = np.random.default_rng(1).standard_normal((12, 10, 3, 3))
    f = factorize(w, 10)
    assert f.u.shape == (10, 10, 1, 1)
    assert f.v.shape == (12, 10, 3, 3)
    np.testing.assert_allclose(compose(f.u, f.v), w, atol=1e-12)
    assert f.energy == pytest.approx(1.0)
    assert f.predicted_error == pytest.approx(0.0, abs=1e-6)


def test_unfold_is_along_input_channels() -> None:
    w = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    m = unfold(w)
    assert m.shape == (3, 8)
    # Row c holds every weight that reads input channel c: W[:, c] flattened.
    np.testing.assert_array_equal(m[1], w[:, 1].reshape(-1))


def test_rank16_plus_one_percent_noise_factorises_at_16() -> None:
    rng = np.random.default_rng(2)
    w = low_rank_weight(rng, cout=48, cin=96, k=3, rank=16, noise=0.01).astype(np.float64)
    f = factorize(w, 16)
    err = np.linalg.norm(compose(f.u, f.v) - w) / np.linalg.norm(w)
    assert f.energy > 0.999
    assert err < 0.012  # about the noise level, nothing more
    assert f.predicted_error == pytest.approx(err, rel=1e-6)  # weight error = √(1−E) exactly
    # At width 8 the rank-16 signal is cut: the energy and error say so.
    assert factorize(w, 8).energy < 0.9


def test_random_gaussian_weights_are_not_low_rank() -> None:
    w = np.random.default_rng(3).standard_normal((48, 480, 5, 5))
    f = factorize(w, 16)
    # 16 of 480 directions of an isotropic matrix keep ~ (16/480) of the energy, a little more.
    assert 0.03 < f.energy < 0.12
    assert f.predicted_error > 0.9
    assert energy_at(w, 16) == pytest.approx(f.energy, rel=1e-9)


def test_energy_curve_hand_values() -> None:
    curve = energy_curve(np.array([3.0, 2.0, 1.0]))  # squares 9, 4, 1 of 14
    np.testing.assert_allclose(curve, [0, 9 / 14, 13 / 14, 1.0])


def test_whitened_factorisation_wins_on_correlated_inputs() -> None:
    rng = np.random.default_rng(4)
    cin, cout, k, r = 64, 32, 3, 8
    w = rng.standard_normal((cout, cin, k, k))
    # Activations near an 8-dimensional subspace of the 64 channels.
    basis = rng.standard_normal((cin, r))
    x = rng.standard_normal((4000, r)) @ basis.T + 0.01 * rng.standard_normal((4000, cin))
    acc = SecondMoment()
    acc.add(x.reshape(4000, cin, 1, 1))
    cov = acc.covariance()
    np.testing.assert_allclose(cov, x.T @ x / 4000, rtol=1e-10)
    m = unfold(w)

    def out_err(f: object) -> float:
        approx = unfold(compose(f.u, f.v))  # type: ignore[attr-defined]
        return float(np.linalg.norm(x @ (approx - m)) / np.linalg.norm(x @ m))

    plain, white = factorize(w, r), factorize(w, r, cov)
    assert white.whitened and not plain.whitened
    assert out_err(white) < 0.02 < 0.5 < out_err(plain)
    # The whitened energy predicts the error on those activations.
    assert white.predicted_error == pytest.approx(out_err(white), rel=0.05, abs=1e-3)
