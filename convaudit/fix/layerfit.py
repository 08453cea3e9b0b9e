"""Fitting one factorised conv to the original layer's responses (pure numpy, float64).

Zhang, Zou, He & Sun 2015 ("Accelerating Very Deep Convolutional Networks for Classification
and Detection", TPAMI), asymmetric reconstruction: the rewritten layer reads x̂, what the
already-rewritten layers before it produce, and must reproduce y = W·x + b, the ORIGINAL
layer's response to the original input. With the 1x1 U fixed (the SVD whitened by x̂'s
second moment), the KxK V and its bias are the least-squares map from z = U·x̂ patches to y,
over positions sampled from the calibration runs. Where a Relu (or a Clip from 0) follows, only
r(y) matters: the targets are relaxed where the activation clips (Zhang et al.'s nonlinear
response reconstruction, solved by alternating the least squares and the targets).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Ridge on the normal equations: relative to the mean diagonal, with an absolute floor so an
# all-zero input (a dead channel, a blank calibration image) still gives a finite solution.
RIDGE = 1e-6
RIDGE_FLOOR = 1e-12
# Target/LS alternations where an activation follows: they converge linearly (alternating
# projections), so up to RELAX_ITERATIONS, stopping once an alternation improves ‖t − ŷ‖ by less
# than RELAX_TOLERANCE of itself. Each costs two products of the sample matrix: cheap.
RELAX_ITERATIONS = 50
RELAX_TOLERANCE = 1e-3
# Alternations refitting U for the fitted V (and V again): the U the whitened SVD gives is best
# for W·x̂, not for the original y. Skipped when r·Cin unknowns (r·Cin·Kh for the spatial kind)
# would make too big a system: 8192 unknowns is a 512 MB normal matrix and seconds to solve.
# The U step matters: on PP-OCRv4 det's 96->24 3x3s it took the spatial pair at r = 24 from
# 16% to 9.5% error, and a bottleneck at r = 32 without it (3072 unknowns, above the old limit
# of 2304) fitted worse than one at r = 24 with it.
ALS_ROUNDS = 2
U_STEP_LIMIT = 8192
# With fewer than CHECK_BELOW sampled positions per unknown of the V fit (r·K² + 1 per output
# channel), every CHECK_EVERY-th position is kept out of a first refit and decides whether the
# refit is used at all: least squares with n rows and p unknowns also fits p/n of the noise, so
# it can reproduce the samples better and new inputs worse than the SVD's own factors (seen at
# n = 2.4p on a conv reading random inputs, where the held-out error rose from 0.57 to 0.74).
# A fixed ratio cannot decide alone: at n = 2p on a structured input the refit was right. Above
# the ratio the refit is used (at n = 7.9p it lowers a two-layer net's held-out error).
CHECK_BELOW = 4
CHECK_EVERY = 4
CHECK_MIN = 64


@dataclass(frozen=True, kw_only=True)
class Geometry:
    """A 1-D or 2-D conv's sampling pattern, as 2-D (a 1-D conv is 1 x L)."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads_begin: tuple[int, int]

    @property
    def area(self) -> int:
        return self.kernel[0] * self.kernel[1]


@dataclass(frozen=True, kw_only=True)
class Activation:
    """An activation that clips: values at or below ``low`` (or at or above ``high``) give the
    same output whatever they are. Relu is (0, inf); Relu6 as Clip is (0, 6)."""

    name: str
    low: float = 0.0
    high: float = math.inf

    def __call__(self, y: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.clip(y, self.low, self.high)
        return out


def geometry(
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    auto_pad: str,
    in_spatial: Sequence[int],
    out_spatial: Sequence[int],
) -> Geometry | None:
    """The conv's pattern as 2-D, or None for 3-D and beyond (fitted without the refit)."""
    rank = len(kernel)
    if rank not in (1, 2) or len(in_spatial) != rank or len(out_spatial) != rank:
        return None
    begin = []
    for i in range(rank):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            need = (out_spatial[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
            total = max(need - in_spatial[i], 0)
            begin.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
        elif auto_pad == "VALID":
            begin.append(0)
        else:
            begin.append(int(pads[i]) if pads else 0)

    def two(v: Sequence[int]) -> tuple[int, int]:
        return (1, int(v[0])) if rank == 1 else (int(v[0]), int(v[1]))

    return Geometry(
        kernel=two(kernel),
        strides=two(strides),
        dilations=two(dilations),
        pads_begin=(0, begin[0]) if rank == 1 else (begin[0], begin[1]),
    )


def as_2d(x: np.ndarray) -> np.ndarray:
    """[N, C, L] as [N, C, 1, L]; [N, C, H, W] unchanged."""
    return x[:, :, None, :] if x.ndim == 3 else x


def sample_positions(rng: np.random.Generator, positions: int, count: int) -> np.ndarray:
    """``count`` distinct flat output positions out of ``positions`` (all when fewer), sorted."""
    if count >= positions:
        return np.arange(positions)
    return np.sort(rng.choice(positions, size=count, replace=False))


def gather_patches(
    x: np.ndarray, geo: Geometry, out_hw: tuple[int, int], index: np.ndarray
) -> np.ndarray:
    """The conv's receptive fields at flat output positions ``index`` of x [N, C, H, W]:
    [P, C, kh·kw] in the kernel's (row, column) order, zero outside the image as the conv pads."""
    _, c, h, w = x.shape
    ho, wo = out_hw
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = geo.kernel, geo.strides, geo.dilations, geo.pads_begin
    end_h = max(0, (ho - 1) * sh + (kh - 1) * dh + 1 - ph - h)
    end_w = max(0, (wo - 1) * sw + (kw - 1) * dw + 1 - pw - w)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, end_h), (pw, end_w)))
    n = index // (ho * wo)
    oy, ox = (index % (ho * wo)) // wo, index % wo
    rows = oy[:, None] * sh + np.arange(kh)[None, :] * dh  # [P, kh]
    cols = ox[:, None] * sw + np.arange(kw)[None, :] * dw  # [P, kw]
    # Advanced indices split by the channel slice: numpy puts their dims first -> [P, kh, kw, C].
    p = xp[n[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    out: np.ndarray = p.reshape(len(index), kh * kw, c).transpose(0, 2, 1)
    return out


def gather_responses(y: np.ndarray, index: np.ndarray) -> np.ndarray:
    """y [N, Cout, *spatial] at flat output positions ``index``: [P, Cout]."""
    flat = np.moveaxis(y, 1, -1).reshape(-1, y.shape[1])
    out: np.ndarray = flat[index]
    return out


@dataclass(frozen=True, kw_only=True)
class Refit:
    """The fitted KxK weight and bias, and the layer's error on the sampled positions."""

    u: np.ndarray  # [r, Cin]
    v: np.ndarray  # [Cout, r, kh·kw] (the caller reshapes it to the kernel)
    bias: np.ndarray  # [Cout]
    error: float  # relative L2 of act(y) - act(ŷ) on the samples: after the refit
    error_before: float  # the same with the SVD's own V and the original bias


def _ridge_inverse(g: np.ndarray) -> np.ndarray:
    lam = max(RIDGE * float(np.trace(g)) / g.shape[0], RIDGE_FLOOR)
    out: np.ndarray = np.linalg.inv(g + lam * np.eye(g.shape[0]))
    return out


def relaxed_targets(y: np.ndarray, y_hat: np.ndarray, act: Activation) -> np.ndarray:
    """Targets t with act(t) = act(y) nearest the current ŷ: where y is clipped, any ŷ past
    the clip is as good as y, so t follows ŷ there (min(ŷ, low) below, max(ŷ, high) above)."""
    t = y.copy()
    below, above = y <= act.low, y >= act.high
    t[below] = np.minimum(y_hat[below], act.low)
    t[above] = np.maximum(y_hat[above], act.high)
    return t


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """‖b − a‖ / ‖a‖ (‖b‖ when a is zero)."""
    den = float(np.linalg.norm(a))
    num = float(np.linalg.norm(b - a))
    return num / den if den else num


def _v_step(
    z1: np.ndarray, y: np.ndarray, act: Activation | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(θ = [V; bias] least squares from z1 to y, ŷ, the targets used): ReLU-aware when an
    activation follows, alternating with the relaxed targets until they settle."""
    inv = _ridge_inverse(z1.T @ z1)
    t = y
    theta = inv @ (z1.T @ t)
    fitted = z1 @ theta
    if act is not None:
        gap = math.inf
        for _ in range(RELAX_ITERATIONS):
            t = relaxed_targets(y, fitted, act)
            theta = inv @ (z1.T @ t)
            fitted = z1 @ theta
            new_gap = float(np.linalg.norm(t - fitted))
            if new_gap > (1 - RELAX_TOLERANCE) * gap:
                break
            gap = new_gap
    return theta, fitted, t


def _u_step(x: np.ndarray, s: np.ndarray, a: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """Least-squares U [r, Cin] for fixed V [Cout, r, K]: ŷ_p = Σ_k V_k·U·x_{p,k} is linear in U,
    with normal matrix Σ_{k,l} (V_kᵀV_l) ⊗ S_kl, S the patches' (Cin·K)² second moment and ``a``
    the targets minus the bias. None when the system is too large to solve here."""
    _, r, k = v.shape
    cin = x.shape[1]
    if r * cin > U_STEP_LIMIT:
        return None
    b = np.einsum("oak,obl->akbl", v, v, optimize=True)
    g = np.einsum("akbl,ckdl->acbd", b, s.reshape(cin, k, cin, k), optimize=True)
    av = np.einsum("po,oak->pak", a, v, optimize=True)
    rhs = np.einsum("pak,pck->ac", av, x, optimize=True)
    g2 = g.reshape(r * cin, r * cin)
    lam = max(RIDGE * float(np.trace(g2)) / g2.shape[0], RIDGE_FLOOR)
    sol = np.linalg.solve(g2 + lam * np.eye(g2.shape[0]), rhs.reshape(-1))
    return sol.reshape(r, cin) if np.all(np.isfinite(sol)) else None


def checked_refit(
    u: np.ndarray,
    v: np.ndarray,
    bias: np.ndarray | None,
    patches: np.ndarray,
    y: np.ndarray,
    act: Activation | None,
    rounds: int = ALS_ROUNDS,
) -> Refit:
    """``refit`` on all samples, if there are enough per unknown or if a refit on all but every
    CHECK_EVERY-th also beats the SVD's own factors on those held-out positions; else the SVD's
    factors."""
    check = np.arange(len(y)) % CHECK_EVERY == CHECK_EVERY - 1
    _, r, k = v.shape
    if len(y) >= CHECK_BELOW * (r * k + 1) or len(y) < CHECK_MIN:
        return refit(u, v, bias, patches, y, act, rounds)
    fit = refit(u, v, bias, patches[~check], y[~check], act, rounds)
    cout = v.shape[0]
    f = act or Activation(name="none", low=-math.inf)
    b0 = np.zeros(cout) if bias is None else np.asarray(bias, dtype=np.float64)
    target = f(np.asarray(y[check], dtype=np.float64))
    before = relative(target, f(_response(patches[check], u, v, b0)))
    after = relative(target, f(_response(patches[check], fit.u, fit.v, fit.bias)))
    if not after < before:
        whole = relative(f(np.asarray(y, dtype=np.float64)), f(_response(patches, u, v, b0)))
        return Refit(u=u, v=v.reshape(cout, r, k), bias=b0, error=whole, error_before=whole)
    return refit(u, v, bias, patches, y, act, rounds)


def _response(patches: np.ndarray, u: np.ndarray, v: np.ndarray, b: np.ndarray) -> np.ndarray:
    cout, r, k = v.shape
    x = np.asarray(patches, dtype=np.float64)
    z = np.einsum("pck,rc->prk", x, u, optimize=True).reshape(len(x), r * k)
    out: np.ndarray = z @ v.reshape(cout, r * k).T + b
    return out


def refit(
    u: np.ndarray,
    v: np.ndarray,
    bias: np.ndarray | None,
    patches: np.ndarray,
    y: np.ndarray,
    act: Activation | None,
    rounds: int = ALS_ROUNDS,
) -> Refit:
    """Least-squares V and bias from z = U·x̂ patches to the original responses y, then up to
    ``rounds`` alternations refitting U for that V and V for that U (each must lower the error).

    ``u`` [r, Cin], ``v`` [Cout, r, kh·kw] (the SVD's), ``patches`` [P, Cin, kh·kw] of x̂,
    ``y`` [P, Cout]. Keeps the SVD's factors when the refit is not better on the samples.
    """
    cout, r, k = v.shape
    x = np.asarray(patches, dtype=np.float64)
    ones = np.ones((len(y), 1))

    def design(u_: np.ndarray) -> np.ndarray:
        z = np.einsum("pck,rc->prk", x, u_, optimize=True).reshape(len(y), r * k)
        return np.hstack([z, ones])

    b0 = np.zeros(cout) if bias is None else np.asarray(bias, dtype=np.float64)
    f = act or Activation(name="none", low=-math.inf)
    z1 = design(u)
    start = z1[:, :-1] @ v.reshape(cout, r * k).T + b0
    error_before = relative(f(y), f(start))
    theta, fitted, t = _v_step(z1, y, act)
    best = (relative(f(y), f(fitted)), u, theta)
    flat = x.reshape(len(y), -1)
    s = flat.T @ flat if rounds else None
    for _ in range(rounds):
        assert s is not None
        v_now = theta[:-1].T.reshape(cout, r, k)
        u_new = _u_step(x, s, t - theta[-1], v_now)
        if u_new is None:
            break
        theta_new, fitted_new, t_new = _v_step(design(u_new), y, act)
        err = relative(f(y), f(fitted_new))
        if not (np.all(np.isfinite(theta_new)) and err < (1 - 1e-3) * best[0]):
            break
        best, theta, t = (err, u_new, theta_new), theta_new, t_new
    error, u_fit, theta = best
    if not (np.all(np.isfinite(theta)) and error <= error_before):
        return Refit(
            u=u, v=v.reshape(cout, r, k), bias=b0, error=error_before, error_before=error_before
        )
    return Refit(
        u=u_fit,
        v=theta[:-1].T.reshape(cout, r, k),
        bias=theta[-1],
        error=error,
        error_before=error_before,
    )
