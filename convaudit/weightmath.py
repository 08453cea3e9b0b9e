"""Pure numpy maths on conv weights that ``scan --weights`` and ``fix`` share: the unfolding along
input channels, the energy a rank-r factorisation keeps, and BatchNorm folding. No onnx here.

W[Cout, Cin, *K] is unfolded into M = Cin × (Cout·prod(K)); the best rank-r input-channel
factorisation keeps E(r) = Σ_{i≤r} σᵢ² / Σ σᵢ² of M's squared singular values (Eckart–Young),
and for white inputs its relative output error is √(1−E).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convaudit.errors import ModelLoadError


def require_finite(w: np.ndarray, name: str, path: str | Path, how: str = "") -> None:
    """Refuse a weight holding NaN or infinity (``how``: what was done to it, e.g. a folded
    BatchNorm): its spectrum, and any width or factor from it, is meaningless, and LAPACK
    fails on it. Exported weights never are; misread bytes (an external-data offset a few
    bytes off) often are."""
    with np.errstate(all="ignore"):  # a signalling NaN warns when compared
        finite = bool(np.all(np.isfinite(w)))
    if not finite:
        raise ModelLoadError(
            f"tensor {name!r} holds NaN or infinite values{how}: no width can be read from it;"
            " check the model's export (and its external-data offsets)",
            path=path,
        )


def unfold(w: np.ndarray) -> np.ndarray:
    """W[Cout, Cin, *K] -> M[Cin, Cout·prod(K)] in float64."""
    w64 = np.asarray(w, dtype=np.float64)
    return np.ascontiguousarray(np.moveaxis(w64, 1, 0).reshape(w64.shape[1], -1))


def fold(m: np.ndarray, cout: int, kernel: tuple[int, ...]) -> np.ndarray:
    """Inverse of ``unfold`` for r rows: M[r, Cout·prod(K)] -> W[Cout, r, *K]."""
    r = m.shape[0]
    return np.ascontiguousarray(np.moveaxis(m.reshape(r, cout, *kernel), 0, 1))


def energy_curve(singular: np.ndarray) -> np.ndarray:
    """E(r) for r = 0..len(singular): cumulative kept squared singular values over the total."""
    sq = np.asarray(singular, dtype=np.float64) ** 2
    total = float(sq.sum())
    cum = np.concatenate([[0.0], np.cumsum(sq)])
    return cum / total if total > 0 else np.ones_like(cum)


def weight_energy_curve(w: np.ndarray) -> np.ndarray:
    """E(r) for r = 0..Cin of W unfolded along Cin (eigenvalues only: cheap)."""
    m = unfold(w)
    # Shares of energy do not depend on W's scale: dividing by its largest magnitude keeps the
    # Gram matrix from overflowing (weights near 1e200) or underflowing to 0 (near 1e-200).
    peak = float(np.max(np.abs(m))) if m.size else 0.0
    if 0.0 < peak < np.inf:
        m = m / peak
    # The eigenvalues of M Mᵀ (Cin × Cin) are the squared singular values: cheaper than an SVD of
    # a wide matrix, and exact enough for a share of energy.
    gram = m @ m.T
    eig = np.clip(np.linalg.eigvalsh(gram)[::-1], 0.0, None)
    return energy_curve(np.sqrt(eig))


def energy_at(w: np.ndarray, width: int) -> float:
    """E(width) of W unfolded along Cin (used by ``scan --weights``)."""
    curve = weight_energy_curve(w)
    return float(curve[min(width, len(curve) - 1)])


def smallest_width(curve: np.ndarray, max_error: float, cap: int | None, step: int) -> int | None:
    """The narrowest multiple of ``step`` up to ``cap`` whose predicted error √(1−E(r)) is at
    most ``max_error`` (None when no such width is at or below ``cap``)."""
    if cap is None:
        return None
    for width in range(step, cap + 1, step):
        if predicted_error(float(curve[min(width, len(curve) - 1)])) <= max_error:
            return width
    return None


def predicted_error(energy: float) -> float:
    """Relative output error √(1−E) of a factorisation keeping ``energy``, for white inputs."""
    return float(np.sqrt(max(0.0, 1.0 - energy)))


def fold_batchnorm(
    w: np.ndarray,
    b: np.ndarray | None,
    scale: np.ndarray,
    shift: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    epsilon: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Conv followed by inference BatchNormalization as one conv: (W·s, (b − mean)·s + shift)."""
    s = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + epsilon)
    w2 = np.asarray(w, np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))
    b0 = np.zeros_like(s) if b is None else np.asarray(b, np.float64)
    return w2, (b0 - np.asarray(mean, np.float64)) * s + np.asarray(shift, np.float64)
