"""Low-rank factorisation of a conv weight along its input channels: W ≈ V ∘ U (1x1 then KxK).

W[Cout, Cin, *K] is unfolded into M = Cin × (Cout·prod(K)). The truncated SVD M ≈ P_r S_r Q_rᵀ
gives the best rank-r input-channel factorisation (Eckart–Young): the 1x1 weight is U = P_rᵀ
and the KxK weight is V = P_rᵀ M, folded back to [Cout, r, *K]. With calibration inputs the
SVD is taken of C^{1/2} M (C the second moment of the conv's input channels), which minimises
the expected output error on those activations instead of the weight error:
U = P_rᵀ C^{-1/2}, V = P_rᵀ C^{1/2} M. Everything is computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convaudit.errors import FixError
from convaudit.weightmath import fold, predicted_error, unfold

# Eigenvalues of C below this share of its mean eigenvalue are lifted: an input channel that is
# always zero would otherwise make C^{-1/2} infinite.
_RIDGE = 1e-6
# The absolute floor under that share: a covariance whose mean eigenvalue is below it (all-zero
# calibration inputs) carries no direction to weight by, and a ridge proportional to 0 would
# make C^{-1/2} infinite: such a C is whitened by the identity (the plain SVD).
_SCALE_FLOOR = 1e-30


@dataclass(frozen=True, kw_only=True)
class Factors:
    """A rank-``width`` factorisation and how much of the weight (or output) it keeps."""

    u: np.ndarray  # [r, Cin, 1, ...]: the 1x1 reduction
    v: np.ndarray  # [Cout, r, *K]: the KxK conv on the reduced channels
    width: int
    energy: float  # E(r): kept squared singular values over all
    whitened: bool  # True when computed against a calibration covariance
    # Squared singular values, largest first (ungrouped convs only): E(r) at any width.
    spectrum: tuple[float, ...] | None = None

    @property
    def predicted_error(self) -> float:
        """Relative output error √(1−E) for white inputs (whitened: on the calibration data)."""
        return predicted_error(self.energy)


def _sqrt_and_inv(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C^{1/2} and C^{-1/2} of a symmetric positive semi-definite matrix, ridge-regularised."""
    c = (np.asarray(cov, dtype=np.float64) + np.asarray(cov, dtype=np.float64).T) / 2
    if not np.all(np.isfinite(c)):
        raise FixError(
            "the calibration activations reaching a rewritten conv hold NaN or inf: "
            "the model computes them from --inputs; pass inputs it handles"
        )
    vals, vecs = np.linalg.eigh(c)
    scale = float(np.mean(np.abs(vals)))
    if not scale > _SCALE_FLOOR:
        identity = np.eye(c.shape[0])
        return identity, identity
    vals = np.clip(vals, _RIDGE * scale, None)
    root = np.sqrt(vals)
    return (vecs * root) @ vecs.T, (vecs / root) @ vecs.T


def _factor_one(
    w: np.ndarray, width: int, cov: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U [width, Cin], V unfolded [width, Cout·K], squared singular values largest first)."""
    return _factor_matrix(unfold(w), width, cov)


def _factor_matrix(
    m: np.ndarray, width: int, cov: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-``width`` M ≈ U2ᵀ·V2 with M [n, m] (n: what the first conv reads per position),
    whitened by ``cov`` [n, n] if given: (U2 [width, n], V2 [width, m], squared singular
    values largest first)."""
    cin = m.shape[0]
    if cov is None:
        a, inv_root = m, None
    else:
        if cov.shape != (cin, cin):
            raise ValueError(f"covariance shape {cov.shape} does not match Cin={cin}")
        root, inv_root = _sqrt_and_inv(cov)
        a = root @ m
    # Left singular vectors of A are the eigenvectors of A·Aᵀ (Cin × Cin): much cheaper than an
    # SVD of the wide Cin × (Cout·K²) matrix, and float64 keeps the leading ones accurate.
    eig, vecs = np.linalg.eigh(a @ a.T)
    order = np.argsort(eig)[::-1]
    sq = np.clip(eig[order], 0.0, None)
    r = min(width, cin)
    pr = vecs[:, order[:r]]  # [Cin, r]
    u2 = pr.T if inv_root is None else pr.T @ inv_root
    v2 = pr.T @ a
    if r < width:  # asked for more than the rank: pad with zero channels so the width holds
        u2 = np.vstack([u2, np.zeros((width - r, cin))])
        v2 = np.vstack([v2, np.zeros((width - r, v2.shape[1]))])
    return u2, v2, sq


def factorize(w: np.ndarray, width: int, cov: np.ndarray | None = None, groups: int = 1) -> Factors:
    """Best rank-``width`` factors of ``w`` (whitened by the input covariance ``cov`` if given).

    A grouped conv (``groups`` > 1, W[Cout, Cin/groups, *K]) is factorised group by group, each
    at width / groups: the 1x1 and the KxK are then grouped convs too. ``u`` and ``v`` are
    float64: the caller casts them to the model's dtype.
    """
    w = np.asarray(w, dtype=np.float64)
    cout, cin_g, kernel = w.shape[0], w.shape[1], tuple(int(k) for k in w.shape[2:])
    if width < 1 or width % groups or cout % groups:
        raise ValueError(f"width {width} must be a positive multiple of the {groups} groups")
    rg, cout_g = width // groups, cout // groups
    us, vs, kept, total = [], [], 0.0, 0.0
    spectrum = None
    for g in range(groups):
        block = slice(g * cin_g, (g + 1) * cin_g)
        cov_g = None if cov is None else np.asarray(cov)[block, block]
        u2, v2, sq = _factor_one(w[g * cout_g : (g + 1) * cout_g], rg, cov_g)
        us.append(u2)
        vs.append(fold(v2, cout_g, kernel))  # [Cout/g, r/g, *K]
        kept, total = kept + float(sq[:rg].sum()), total + float(sq.sum())
        spectrum = tuple(float(x) for x in sq) if groups == 1 else None
    u = np.concatenate(us).reshape(width, cin_g, *([1] * len(kernel)))
    v = np.concatenate(vs)
    energy = kept / total if total > 0 else 1.0
    return Factors(
        u=u, v=v, width=width, energy=energy, whitened=cov is not None, spectrum=spectrum
    )


def spatial_matrix(w: np.ndarray) -> np.ndarray:
    """W[Cout, Cin, Kh, Kw] -> M[(Cin, Kh), (Cout, Kw)] in float64: a column of the input
    (Cin·Kh values) times M gives, for each horizontal tap, what it adds to each output."""
    w64 = np.asarray(w, dtype=np.float64)
    cout, cin, kh, kw = w64.shape
    return np.ascontiguousarray(w64.transpose(1, 2, 0, 3).reshape(cin * kh, cout * kw))


def spatial_factorize(w: np.ndarray, width: int, cov: np.ndarray | None = None) -> Factors:
    """Best rank-``width`` spatial factors of a dense 2-D ``w`` (Jaderberg et al. 2014, scheme 2).

    W[o, c, i, j] ≈ Σ_k H[o, k, j]·V[k, c, i]: ``u`` is the Kh x 1 conv V [r, Cin, Kh, 1] and
    ``v`` the 1 x Kw conv H [Cout, r, 1, Kw]: the truncated SVD of W as a (Cin·Kh) × (Cout·Kw)
    matrix, whitened by ``cov``, the second moment of the input's Cin·Kh columns (the cross
    terms between horizontal taps are left out: the least-squares fit on the real patches,
    ``layerfit``, accounts for them).
    """
    w = np.asarray(w, dtype=np.float64)
    cout, cin, kh, kw = w.shape
    if width < 1:
        raise ValueError(f"width {width} must be positive")
    u2, v2, sq = _factor_matrix(spatial_matrix(w), width, cov)
    u = u2.reshape(width, cin, kh, 1)
    v = np.ascontiguousarray(v2.reshape(width, cout, kw).transpose(1, 0, 2)).reshape(
        cout, width, 1, kw
    )
    total = float(sq.sum())
    energy = float(sq[:width].sum()) / total if total > 0 else 1.0
    return Factors(
        u=u,
        v=v,
        width=width,
        energy=energy,
        whitened=cov is not None,
        spectrum=tuple(float(x) for x in sq),
    )


def compose_spatial(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The single conv weight equal to the Kh x 1 ``u`` followed by the 1 x Kw ``v``."""
    vert = np.asarray(u, dtype=np.float64)[..., 0]  # [r, Cin, Kh]
    horiz = np.asarray(v, dtype=np.float64)[:, :, 0, :]  # [Cout, r, Kw]
    out: np.ndarray = np.einsum("okj,kci->ocij", horiz, vert)
    return out


def column_moment(patches: np.ndarray, kh: int) -> np.ndarray:
    """E[c cᵀ] of the input columns (Cin·Kh values) a spatial pair's Kh x 1 conv reads, from
    conv patches [P, Cin, Kh·Kw] (every horizontal tap's column counts)."""
    p, cin, k = patches.shape
    kw = k // kh
    cols = np.asarray(patches, dtype=np.float64).reshape(p, cin, kh, kw)
    flat = cols.transpose(0, 3, 1, 2).reshape(p * kw, cin * kh)
    out: np.ndarray = flat.T @ flat / max(len(flat), 1)
    return out


def finite_as(dtype: np.dtype[Any], *arrays: np.ndarray) -> bool:
    """True if every value stays finite once cast to the model's ``dtype`` (float16 overflows
    at 65,504): a rewrite must never write inf or NaN weights."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(bool(np.all(np.isfinite(np.asarray(a).astype(dtype)))) for a in arrays)


def compose(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The single conv weight equal to the 1x1 ``u`` followed by ``v`` (for checks)."""
    u2 = np.asarray(u, dtype=np.float64).reshape(u.shape[0], u.shape[1])  # [r, Cin]
    out: np.ndarray = np.einsum("or...,rc->oc...", np.asarray(v, dtype=np.float64), u2)
    return out


class SecondMoment:
    """A running second moment of a conv's input channels, fed batch by batch: the whitening
    needs only the sum of x xᵀ and the count, never every activation at once."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, x: np.ndarray) -> None:
        """Add activations x[N, C, *spatial] (every position of every sample counts)."""
        c = x.shape[1]
        flat = np.moveaxis(np.asarray(x, dtype=np.float64), 1, -1).reshape(-1, c)
        gram = flat.T @ flat
        self.total = gram if self.total is None else self.total + gram
        self.count += flat.shape[0]

    def covariance(self) -> np.ndarray:
        """The second moment E[x xᵀ] over every position and sample seen (uncentred: the conv
        is linear, so its error on x is (W'−W)·x, whose mean square is tr(ΔWᵀ E[x xᵀ] ΔW))."""
        if self.total is None:
            raise ValueError("no activations were added")
        return self.total / max(self.count, 1)
