"""Memorization probes: pure functions of a trained map f and its training set X.

Notation: X = [x_1 ... x_n], each x_i a point of R^d (any layout; flattened here),
P_X the orthogonal projector onto span(X), J_f(x) the d x d Jacobian of f at x.
``f`` is any callable taking a batch [B, ...] to a batch of the same shape (a
``torch.nn.Module`` in eval mode, or a hand-built map in the tests).
"""
from __future__ import annotations

import gc
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse.linalg as sla
import torch
from torch.func import jacfwd, linearize, vjp, vmap

from ..rules import CENSUS, acts_like_projection

Map = Callable[[torch.Tensor], torch.Tensor]

DENSE_MAX_DIM = 256  # below this a batched dense Jacobian beats ARPACK (benchmarks/probe_bench.py)


def _flat(f: Map, shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """g: R^d -> R^d, g(v) = vec(f(v reshaped to one example of ``shape``))."""
    return lambda v: f(v.reshape(1, *shape)).reshape(-1)


def compose(f: Map, n: int) -> Map:
    """f applied n times. For a net trained on a cycle x_0 -> x_1 -> ... -> x_(n-1) -> x_0 (C5),
    every x_i is a fixed point of f^n, and by the chain rule J_(f^n)(x_0) = J(x_(n-1)) ... J(x_0):
    every probe below, run on f^n, probes the cycle."""
    def g(x: torch.Tensor) -> torch.Tensor:
        for _ in range(n):
            x = f(x)
        return x
    return g


# --- fixed points -------------------------------------------------------------------------------

@torch.no_grad()
def fixed_point_residuals(f: Map, X: torch.Tensor) -> torch.Tensor:
    """r_i = ||f(x_i) - x_i|| / ||x_i||.   X: [n, ...] -> r: [n]."""
    diff = (f(X) - X).flatten(1).norm(dim=1)
    return diff / X.flatten(1).norm(dim=1).clamp_min(1e-12)


# --- Jacobian spectra -----------------------------------------------------------------------------

def jacobians_dense(f: Map, X: torch.Tensor) -> torch.Tensor:
    """J_f(x_i) for every i, by forward-mode autodiff batched over i.   X: [n, ...] -> [n, d, d]."""
    g = _flat(f, tuple(X.shape[1:]))
    return vmap(jacfwd(g))(X.flatten(1).detach())


def spectra_dense(f: Map, X: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """rho_i = max |eig J_f(x_i)|, s_i = sigma_1(J_f(x_i)) from dense Jacobians (the test oracle).

    Eigenvalues in float64, so complex pairs and near-1 moduli are resolved exactly. -> ([n], [n])
    """
    J = jacobians_dense(f, X).double()
    rho = torch.linalg.eigvals(J).abs().amax(dim=-1)
    s1 = torch.linalg.matrix_norm(J, ord=2)
    return rho.cpu().numpy(), s1.cpu().numpy()


def jacobian_operator(f: Map, x: torch.Tensor) -> sla.LinearOperator:
    """J_f(x) as a scipy LinearOperator: matvec by a jvp (torch.func.linearize), rmatvec by a vjp.

    x: one example [...] (no batch dim). ARPACK sees float64; products run in f's dtype.
    """
    g = _flat(f, tuple(x.shape))
    v0 = x.reshape(-1).detach()
    with warnings.catch_warnings():  # linearize's tracer warns about an internal constant; harmless
        warnings.simplefilter("ignore", UserWarning)
        _, jvp_fn = linearize(g, v0)
    _, vjp_fn = vjp(g, v0)
    d = v0.numel()

    def to_t(v: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(v).reshape(-1), dtype=v0.dtype, device=v0.device)

    def mv(v: np.ndarray) -> np.ndarray:
        if np.iscomplexobj(v):  # ARPACK may hand a complex vector; J is real so split the parts
            return mv(v.real) + 1j * mv(v.imag)
        return jvp_fn(to_t(v)).double().cpu().numpy()

    def rmv(v: np.ndarray) -> np.ndarray:
        if np.iscomplexobj(v):
            return rmv(v.real) + 1j * rmv(v.imag)
        return vjp_fn(to_t(v))[0].double().cpu().numpy()

    return sla.LinearOperator((d, d), matvec=mv, rmatvec=rmv, dtype=np.float64)


def spectra_matrix_free(f: Map, X: torch.Tensor, tol: float = 1e-8,
                        maxiter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """rho_i = max |lambda(J_f(x_i))| by ARPACK's implicitly restarted Arnoldi (scipy ``eigs``, which
    returns both members of a dominant complex pair), and sigma_1(J_f(x_i)) by ``svds`` (Lanczos on
    J^T J), from Jacobian-vector products only: O(d) memory, never the d x d matrix.

    A point where ARPACK does not converge gets NaN (counted by the caller), never an exception.
    X: [n, ...] -> ([n], [n]).
    """
    n, d = X.shape[0], X[0].numel()
    if d < 4:  # ARPACK needs k < d - 1; tiny maps are cheap to do densely
        return spectra_dense(f, X)
    rho, s1 = np.full(n, np.nan), np.full(n, np.nan)
    k = min(3, d - 2)  # a few eigenvalues, so a complex pair or a near-tie is not missed
    weights = sum(p.numel() for p in f.parameters()) if isinstance(f, torch.nn.Module) else 0
    every = max(1, 2**28 // max(1, 8 * 4 * weights))  # examples per collection: ~8 weight copies leak each
    for i in range(n):
        op = jacobian_operator(f, X[i])
        try:
            rho[i] = np.abs(sla.eigs(op, k=k, which="LM", tol=tol, maxiter=maxiter,
                                     return_eigenvectors=False)).max()
        except sla.ArpackNoConvergence:
            pass
        try:
            s1[i] = sla.svds(op, k=1, tol=tol, maxiter=maxiter, return_singular_vectors=False, solver="arpack").max()
        except sla.ArpackNoConvergence:
            pass
        # linearize's traced graph holds reference cycles that only a full collection frees: each
        # example's graph (copies of the weights) would stay alive until Python's collector happens to
        # run, ~170 MB per example for an fc net of width 2048. A full collection costs ~0.2 s in a
        # process holding torch, pandas and scipy, so it runs once per ~256 MB of such graphs
        del op
        if (i + 1) % every == 0:
            gc.collect()
    return rho, s1


KRYLOV_STEPS = 60      # Krylov dimension of the batched spectra; a point whose Ritz value has not settled goes to ARPACK
KRYLOV_TOL = 1e-6      # ... settled: the Ritz residual |h_(K+1,K) y_K| is below this times |theta|
KRYLOV_FLOATS = 2**24  # the batch's Krylov bases hold at most this many float64 numbers (128 MB): larger X is chunked


def _krylov_top(apply: Callable[[torch.Tensor], torch.Tensor], v0: torch.Tensor, steps: int,
                tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row b of v0 [B, d], the largest-modulus Ritz value theta_b of the operator A_b (``apply``
    maps [B, d] to the rows' A_b v_b) after ``steps`` Arnoldi steps from v0_b, with full
    reorthogonalization (Gram-Schmidt twice), in float64. On a symmetric A_b this is Lanczos.
    settled_b: |h_(K+1,K) y_K| <= tol |theta_b| (y the unit Ritz vector), the Ritz pair's residual; or the
    Krylov space became invariant, where theta_b is an exact eigenvalue.   -> (theta [B] complex, settled [B])."""
    B, d = v0.shape
    K = min(steps, d)
    Q = v0.new_zeros((B, K + 1, d))
    H = v0.new_zeros((B, K + 1, K))
    Q[:, 0] = v0 / v0.norm(dim=1, keepdim=True)
    for j in range(K):
        w = apply(Q[:, j])
        for _ in range(2):
            h = torch.einsum("bkd,bd->bk", Q[:, :j + 1], w)
            w = w - torch.einsum("bk,bkd->bd", h, Q[:, :j + 1])
            H[:, :j + 1, j] += h
        norm = w.norm(dim=1)
        H[:, j + 1, j] = norm
        Q[:, j + 1] = w / norm.clamp_min(1e-300)[:, None]
    vals, vecs = torch.linalg.eig(H[:, :K, :K])
    top = vals.abs().argmax(dim=1)
    theta = vals.gather(1, top[:, None])[:, 0]
    y = vecs.gather(2, top[:, None, None].expand(B, K, 1))[:, :, 0]
    resid = H[:, K, K - 1] * (y[:, K - 1].abs() / y.abs().norm(dim=1).clamp_min(1e-300))
    settled = (resid <= tol * theta.abs()) | (H[:, K, K - 1] <= 1e-12 * H[:, :K, :K].abs().amax(dim=(1, 2)))
    return theta, settled


def spectra_batched(f: Map, X: torch.Tensor, steps: int = KRYLOV_STEPS, tol: float = KRYLOV_TOL,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """rho_i and sigma_1 at every row of X as ``spectra_matrix_free``, but all points at once: each Krylov step
    is one batched Jacobian-vector product over the rows (``torch.func.linearize`` and ``vjp`` of the batch
    map: f acts on each row alone, so the batch Jacobian is block diagonal and one product serves every
    point). rho_i: the largest-modulus Ritz value of ``steps`` Arnoldi steps on J_f(x_i); sigma_1: the square
    root of the largest Ritz value of Lanczos on J^T J. A point whose Ritz pair has not settled
    (``_krylov_top``) is done again by ARPACK (``spectra_matrix_free``), so the answer never rests on an
    unconverged Krylov space.   X: [n, ...] -> ([n], [n])."""
    n, d = X.shape[0], X[0].numel()
    if d < 4 or n == 0:
        return spectra_matrix_free(f, X)
    rho, s1 = np.full(n, np.nan), np.full(n, np.nan)
    chunk = max(1, KRYLOV_FLOATS // ((min(steps, d) + 1) * d))
    gen = torch.Generator().manual_seed(seed)
    for lo in range(0, n, chunk):
        Xc = X[lo:lo + chunk].detach()
        m, shape, dtype = len(Xc), tuple(Xc.shape), Xc.dtype
        g = lambda v: f(v.reshape(shape)).reshape(m, -1)  # noqa: E731 (the batch map, row by row)
        with warnings.catch_warnings():  # linearize's tracer warns about an internal constant; harmless
            warnings.simplefilter("ignore", UserWarning)
            _, jvp_fn = linearize(g, Xc.reshape(m, -1))
        _, vjp_fn = vjp(g, Xc.reshape(m, -1))
        J = lambda v: jvp_fn(v.to(dtype)).double()  # noqa: E731
        JtJ = lambda v: vjp_fn(jvp_fn(v.to(dtype)))[0].double()  # noqa: E731
        v0 = torch.randn((m, d), generator=gen, dtype=torch.float64).to(Xc.device)
        theta, ok_r = _krylov_top(J, v0, steps, tol)
        lam, ok_s = _krylov_top(JtJ, v0, steps, tol)
        rho[lo:lo + m] = np.where(ok_r.cpu().numpy(), theta.abs().cpu().numpy(), np.nan)
        s1[lo:lo + m] = np.where(ok_s.cpu().numpy(), lam.real.clamp_min(0).sqrt().cpu().numpy(), np.nan)
    redo = np.flatnonzero(np.isnan(rho) | np.isnan(s1))
    if redo.size:
        r, s = spectra_matrix_free(f, X[torch.as_tensor(redo, device=X.device)])
        rho[redo] = np.where(np.isnan(rho[redo]), r, rho[redo])
        s1[redo] = np.where(np.isnan(s1[redo]), s, s1[redo])
    return rho, s1


def spectra(f: Map, X: torch.Tensor, method: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Spectral radius and top singular value of J_f at every row of X: 'dense', 'arpack' (one point at a
    time), 'batched' (every point at once, ARPACK for any that did not settle) or 'auto' (dense up to
    DENSE_MAX_DIM dimensions, else batched)."""
    if method == "auto":
        method = "dense" if X[0].numel() <= DENSE_MAX_DIM else "batched"
    if method == "dense":
        return spectra_dense(f, X)
    return spectra_batched(f, X) if method == "batched" else spectra_matrix_free(f, X)


# --- iteration x <- f(x) --------------------------------------------------------------------------

# where a start's iteration ended (``Limits.outcome``)
CONVERGED, DIVERGED, CYCLE, CAPPED, UNCONFIRMED = 0, 1, 2, 3, 4
OUTCOMES = ("converged", "diverged", "cycle", "capped", "unconfirmed")
PERIOD_MAX = 8  # cycles of period 2 .. PERIOD_MAX are detected (period 1 is a fixed point)
WINDOW = 20     # steps over which a still-moving start's contraction rate is measured
# An iterate this many times farther from 0 (RMS) than the farthest start has diverged: no image-like
# limit lies there, and waiting for a float overflow would spend the step budget on a start already
# decided (one growing by 1% a step overflows float32 after ~9,000 steps, and was counted capped)
DIVERGE_FACTOR = 1e3


@dataclass
class Limits:
    x: torch.Tensor          # [m, ...] the last iterate of each start
    converged: torch.Tensor  # [m] bool: the step test passed, and the limit was confirmed
    steps: torch.Tensor      # [m] int: steps taken until the outcome was known (confirmation not counted)
    outcome: torch.Tensor | None = None  # [m] int: CONVERGED, DIVERGED, CYCLE, CAPPED or UNCONFIRMED
    period: torch.Tensor | None = None   # [m] int: the cycle's period (0 where the outcome is no cycle)

    def __post_init__(self) -> None:
        if self.outcome is None:  # a hand-made Limits: converged or capped
            self.outcome = torch.where(self.converged, CONVERGED, CAPPED)
        if self.period is None:
            self.period = torch.zeros_like(self.steps)


def _rms(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """RMS(a - b) = ||a - b|| / sqrt(d) per row (RMS(a) without ``b``)."""
    return (a if b is None else a - b).flatten(1).norm(dim=1) / a[0].numel() ** 0.5


def _rms_step(f: Map, x: torch.Tensor) -> torch.Tensor:
    """RMS(f(x) - x) per row."""
    return _rms(f(x), x)


def divergence_bound(starts: torch.Tensor) -> float:
    """B = DIVERGE_FACTOR * max_k RMS(s_k) over the starts s_k: an iterate with RMS(x_t) > B (or a
    non-finite one) has diverged. Infinite where every start is 0 (no scale: only a non-finite iterate
    diverges). In a trial the starts include the training images and the noisy starts about them, so
    B is a thousand times the data's own scale.   starts: [m, ...]."""
    if starts.numel() == 0:
        return float("inf")
    scale = float(_rms(starts.double()).max())
    return DIVERGE_FACTOR * scale if scale > 0 else float("inf")


@torch.inference_mode()
def iterate(f: Map, starts: torch.Tensor, max_steps: int, tol: float, confirm_steps: int = 0,
            share: float = 1e-3, max_total: int | None = None, period_max: int = PERIOD_MAX) -> Limits:
    """Iterate x_{t+1} = f(x_t) from every start at once until its outcome is known; only the starts
    still moving are carried from step to step.   starts: [m, ...].

    Outcomes, with RMS(v) = ||v|| / sqrt(d):
    - *converged*: RMS(x_{t+1} - x_t) < tol, then confirmed (below);
    - *diverged*: the iterate became non-finite, or RMS(x_t) exceeded ``divergence_bound(starts)``
      (DIVERGE_FACTOR times the farthest start's RMS);
    - *cycle* of period p (2 <= p <= ``period_max``): RMS(x_{t+1} - x_{t+1-p}) < tol at p steps in a
      row, a whole period repeated;
    - *capped*: still moving. Every start gets ``max_steps`` steps. After that a start goes on only
      while it contracts fast enough to finish within ``max_total`` steps: at ``max_steps`` and every
      WINDOW steps after, with s_t its RMS step and q = (s_t / s_{t-w})^(1/w) its rate over the last
      w <= WINDOW steps, its projected finish is t + log(tol / s_t) / log(q); it is too slow when
      q >= 1, when that finish lies beyond max_total, or when it receded by more than WINDOW since the
      last decision (a geometric contraction keeps it in place; a start that slows down pushes it
      on), and it stops when it was too slow at two decisions in a row (a start that crosses into a
      faster region takes one larger step). So a slow genuine contraction (q = 0.998) is followed to its limit, and
      a start that wanders or repels stops WINDOW steps after ``max_steps``.

    A stop is not yet a limit: near a slowly repelling fixed point (rho slightly above 1) the steps
    are tiny for a while before the iterate leaves. So a stop point y is *converged* only once
    confirmed: after ``confirm_steps`` further steps its step s_K = RMS(f(y_K) - y_K) is still below
    tol and has not grown, s_K <= max(s_0, tol / 100); else its outcome is *unconfirmed*. Near an
    attracting point s_K ~ rho^K s_0 shrinks; near a repelling one it grows like rho^K (tol / 100
    leaves room for float rounding at a point fixed to machine precision). Stop points within
    relative distance ``share`` of one another sit at the same fixed point and share one
    confirmation run of their least settled member (``_clusters``), so confirming costs one small
    batch, not one per start. The limit reported is the stop point (for a cycle, its last iterate)."""
    max_total = max(max_steps, max_total or max_steps)
    x = starts.clone()
    m = x.shape[0]
    outcome = torch.full((m,), CAPPED, dtype=torch.long, device=x.device)
    steps = torch.full((m,), max_total, dtype=torch.long, device=x.device)
    period = torch.zeros(m, dtype=torch.long, device=x.device)
    idx, cur = torch.arange(m, device=x.device), x
    lags = max(period_max - 1, 0)
    past = x.new_zeros((lags, *x.shape))  # past[j]: x_{t-1-j} of each moving start (newest first)
    runs = torch.zeros((m, lags), dtype=torch.long, device=x.device)  # steps in a row with period j + 2
    periods = torch.arange(2, lags + 2, device=x.device)
    strikes = torch.zeros(m, dtype=torch.long, device=x.device)  # decisions in a row that found a start too slow
    due = x.new_full((m,), float("inf"))  # its projected finish step
    move0, t0 = x.new_zeros(m), 0  # the step at step t0, <= WINDOW ago
    bound = divergence_bound(starts)
    for t in range(1, max_total + 1):
        nxt = f(cur)
        move = _rms(nxt, cur)
        bounded = torch.isfinite(move) & (_rms(nxt) <= bound)  # else diverged: non-finite or beyond the bound
        done = (move < tol) & bounded
        have = min(t - 1, lags)  # lags with an iterate behind them
        cycle = torch.zeros_like(done)
        per = torch.zeros_like(idx)
        if have:
            close = _rms(nxt.unsqueeze(0).expand(have, *nxt.shape).flatten(0, 1),
                         past[:have].flatten(0, 1)).view(have, -1).T < tol
            runs[:, :have] = torch.where(close, runs[:, :have] + 1, 0)
            hit = (runs[:, :have] >= periods[:have]) & (~done & bounded)[:, None]
            cycle = hit.any(dim=1)
            per = torch.where(cycle, periods[hit.int().argmax(dim=1)], 0)  # the smallest period that repeats
        give_up = torch.zeros_like(done)
        decide = t >= max_steps and ((t - max_steps) % WINDOW == 0 or t == max_total)
        if decide:  # at max_steps, then every WINDOW steps: is each start still contracting fast enough?
            if t < max_total and t > t0:
                q = (move / move0).clamp_min(1e-300) ** (1.0 / (t - t0))
                need = torch.log(tol / move) / torch.log(q)
                finish = t + need
                # too slow: not contracting, or not within max_total, or its projected finish recedes (a
                # genuine geometric contraction keeps it in place; a start that slows down pushes it on)
                slow = ~(q < 1) | ~torch.isfinite(need) | (finish > max_total) | (finish > due + WINDOW)
                strikes = torch.where(slow, strikes + 1, 0)
                due = torch.where(torch.isfinite(finish), finish, due)
                give_up = strikes >= 2  # two windows in a row: one larger step is no verdict
            else:
                give_up = torch.ones_like(done)
            give_up &= bounded & ~done & ~cycle
        stop = done | ~bounded | cycle | give_up
        if stop.any():
            x[idx[stop]] = nxt[stop]
            steps[idx[stop]] = t
            outcome[idx[done]] = CONVERGED
            outcome[idx[~bounded]] = DIVERGED
            outcome[idx[cycle]] = CYCLE
            period[idx[cycle]] = per[cycle]
            keep = ~stop
            idx, nxt, cur, move, runs = idx[keep], nxt[keep], cur[keep], move[keep], runs[keep]
            strikes, due = strikes[keep], due[keep]
            past, move0 = past[:, keep], move0[keep]
            if idx.numel() == 0:
                break
        if lags:
            past = torch.cat([cur.unsqueeze(0), past[:-1]])
        if t == 1 or decide or (t < max_steps and t % WINDOW == 0):  # the rate: over the last WINDOW steps or fewer
            move0, t0 = move, t
        cur = nxt
    if idx.numel():
        x[idx] = cur  # the starts still moving at max_total keep their last iterate
    if confirm_steps and (outcome == CYCLE).any():
        _confirm_cycles(f, x, outcome, period, confirm_steps, tol)
    if confirm_steps and (outcome == CONVERGED).any():
        held = (outcome == CONVERGED).nonzero()[:, 0]
        s0_all = _rms_step(f, x[held])
        rep = _clusters(x[held], share, s0_all)
        heads = torch.unique(rep)
        y, s0 = x[held[heads]], s0_all[heads]
        for _ in range(confirm_steps):
            y = f(y)
        sk = _rms_step(f, y)
        ok = torch.zeros(len(held), dtype=torch.bool, device=x.device)
        ok[heads] = torch.isfinite(sk) & (sk < tol) & (sk <= torch.clamp(s0, min=tol / 100))
        outcome[held[~ok[rep]]] = UNCONFIRMED
    return Limits(x, outcome == CONVERGED, steps, outcome, period)


def _confirm_cycles(f: Map, x: torch.Tensor, outcome: torch.Tensor, period: torch.Tensor, confirm_steps: int,
                    tol: float) -> None:
    """A detected cycle y is iterated ``confirm_steps`` more steps to y_K: still periodic and not fixed,
    RMS(f^p(y_K) - y_K) < tol <= RMS(f(y_K) - y_K), it is a cycle; settled to a fixed point (an
    oscillating contraction, eigenvalue near -1, can repeat a period within tol for a while), it
    becomes a convergence to confirm; else its outcome is capped (unknown). In place."""
    rows = (outcome == CYCLE).nonzero()[:, 0]
    y = x[rows]
    for _ in range(confirm_steps):
        y = f(y)
    first = f(y)
    fixed = _rms(first, y) < tol
    z, periodic = first, torch.zeros_like(fixed)
    for j in range(2, int(period[rows].max()) + 1):
        z = f(z)
        periodic |= (period[rows] == j) & (_rms(z, y) < tol)
    x[rows] = y
    outcome[rows] = torch.where(fixed, CONVERGED, torch.where(periodic, CYCLE, CAPPED))
    period[rows] = torch.where(periodic & ~fixed, period[rows], 0)


def _clusters(y: torch.Tensor, share: float, step: torch.Tensor) -> torch.Tensor:
    """Greedy grouping of stop points: taken in order of decreasing ``step`` (the one furthest from
    still), each unassigned point heads a group of the unassigned points within relative distance
    ``share`` of it (||y_i - y_r|| <= share ||y_r||). The head, confirmed for the group, is thus its
    least settled member.   y: [m, ...], step: [m] -> index [m] of each point's head."""
    Y = y.flatten(1).double()
    near = (torch.cdist(Y, Y) <= share * Y.norm(dim=1)[:, None]).cpu()
    rep = torch.full((len(Y),), -1, dtype=torch.long)
    for i in torch.argsort(torch.nan_to_num(step, nan=float("inf")).cpu(), descending=True).tolist():
        if rep[i] < 0:
            rep[near[i] & (rep < 0)] = i
    return rep.to(y.device)


MEMORY_CHECKS = 2      # perturbed copies of x_i iterated beside it (``memory_starts``)
MEMORY_NUDGE = 1e-3    # their distance from x_i, relative to ||x_i||


@dataclass
class Memories:
    """What the map stores for each training example: x_i* = the confirmed limit of iterating from x_i.

    An attracting fixed point sits about r_i / (1 - rho) from x_i, not at x_i (r_i the residual),
    so the memory is where iteration from x_i itself settles. x_i has a memory (``found``) when that
    iteration converges (``iterate``'s confirmed limit), the limit is nearer x_i than any other
    training example, offset_i = ||x_i* - x_i|| / ||x_i|| <= memory_tol, and the iterations from
    small perturbations of x_i (``memory_starts``) converge to it too (within match_tol): an exactly
    fixed x_i that repels keeps its own iterate still, but not its neighbours'."""
    x: torch.Tensor       # [n, ...] x_i* (the last iterate where not found)
    offset: np.ndarray    # [n] ||x_i* - x_i|| / ||x_i||
    found: np.ndarray     # [n] bool


def memory_starts(X: torch.Tensor, gen: torch.Generator, k: int = MEMORY_CHECKS,
                  nudge: float = MEMORY_NUDGE) -> torch.Tensor:
    """k copies of each x_i, each moved by ``nudge`` ||x_i|| in a random direction: [n * k, ...],
    example-major (rows i*k .. i*k + k - 1 belong to x_i)."""
    z = torch.randn((len(X) * k, *X.shape[1:]), generator=gen, dtype=X.dtype).to(X.device)
    z = z / z.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *[1] * (X.dim() - 1))
    scale = nudge * X.flatten(1).norm(dim=1).repeat_interleave(k).view(-1, *[1] * (X.dim() - 1))
    return X.repeat_interleave(k, dim=0) + scale * z


def memories(lim: Limits, X: torch.Tensor, memory_tol: float, match_tol: float | None = None,
             k: int = 0) -> Memories:
    """The memories, from ``lim`` = ``iterate`` run from the training examples themselves, then (with
    ``k``) from their ``memory_starts`` (k per example), possibly as the first rows of a larger batch
    of starts; see ``Memories``.   X: [n, ...]."""
    n = len(X)
    L, T = lim.x[:n].flatten(1).double(), X.flatten(1).double()
    dist = torch.cdist(torch.nan_to_num(L, nan=1e30), T)
    offset = (dist.diagonal() / T.norm(dim=1).clamp_min(1e-12)).cpu().numpy()
    own = (dist.argmin(dim=1) == torch.arange(n, device=dist.device)).cpu().numpy()
    found = lim.converged[:n].cpu().numpy() & own & (offset <= memory_tol)
    if k:
        near = torch.nan_to_num(lim.x[n:n + n * k].flatten(1).double(), nan=1e30).view(n, k, -1)
        rel = (near - L[:, None]).norm(dim=2) / L.norm(dim=1, keepdim=True).clamp_min(1e-12)
        held = lim.converged[n:n + n * k].view(n, k) & (rel <= match_tol)
        found &= held.all(dim=1).cpu().numpy()
    return Memories(lim.x[:n], offset, found)


NONE, SPURIOUS, TRAIN = 0, 1, 2  # where a start ended: nowhere, a fixed point or cycle that is no memory, a memory


@torch.no_grad()
def classify(limits: Limits, mem: Memories, match_tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """For each limit x, the nearest memory j* = argmin_{j found} ||x - x_j*|| and its class:
    TRAIN if converged and ||x - x_j*|| / ||x_j*|| <= match_tol (the start retrieved x_j's memory);
    SPURIOUS if converged otherwise (a stable point that is no memory), or if it ended on a cycle
    farther than match_tol from every memory; NONE otherwise (diverged, capped, unconfirmed, or a cycle
    around a memory, which is no return to it). Where no example has a memory, every converged limit
    and every cycle is SPURIOUS and j* = -1.   -> (nearest [m] long, kind [m] long)."""
    L = torch.nan_to_num(limits.x.flatten(1), nan=1e30).double()
    cycle = limits.outcome == CYCLE
    kind = torch.full((len(L),), NONE, dtype=torch.long, device=L.device)
    kind[limits.converged | cycle] = SPURIOUS
    nearest = torch.full((len(L),), -1, dtype=torch.long, device=L.device)
    ids = torch.as_tensor(np.flatnonzero(mem.found), device=L.device)
    if ids.numel():
        M = mem.x.flatten(1).double().to(L.device)[ids]
        dist = torch.cdist(L, M)
        k = dist.argmin(dim=1)
        nearest = ids[k]
        near = dist.gather(1, k[:, None])[:, 0] / M.norm(dim=1)[k].clamp_min(1e-12) <= match_tol
        kind[limits.converged & near] = TRAIN
        kind[cycle & near] = NONE
    return nearest, kind


# The census of where each start ended: exactly one class per start, so the classes partition the starts
AT_MEMORY, AT_SPURIOUS, ON_CYCLE, ESCAPED, MOVING = range(len(CENSUS))  # rules.CENSUS, in its order


def census(limits: Limits, kind: torch.Tensor) -> torch.Tensor:
    """Each start's census class, from its outcome (``iterate``) and its kind (``classify``):
    AT_MEMORY: its confirmed limit is a memory (kind TRAIN); AT_SPURIOUS: its confirmed limit is a fixed
    point that is no memory; ON_CYCLE: it ended on a cycle (near a memory or not); ESCAPED: it diverged
    (``divergence_bound``); MOVING: still moving when iteration stopped (capped, or a stop whose
    confirmation failed). Every start is in exactly one.   -> [m] long."""
    out = torch.full_like(limits.outcome, MOVING)
    out[limits.converged] = AT_SPURIOUS
    out[limits.converged & (kind == TRAIN)] = AT_MEMORY
    out[limits.outcome == CYCLE] = ON_CYCLE
    out[limits.outcome == DIVERGED] = ESCAPED
    return out


@torch.no_grad()
def spurious_points(y: torch.Tensor, X: torch.Tensor, share: float) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The distinct points among spurious limits y (class AT_SPURIOUS), and how image-like they are.
    The limits are grouped by ``_clusters`` (taken in order, each ungrouped one heads the ungrouped
    limits within relative distance ``share`` of it, ||y_i - y_r|| <= share ||y_r||), one point per
    group, its head p_k. For each: a_k = min_i RMS(p_k - x_i), its distance to the nearest training
    example, and b_k = RMS(p_k - xbar), to the training set's mean xbar = (1/n) sum_i x_i.
    y: [m, ...], X: [n, ...] -> (points [k, ...], a [k], b [k])."""
    if len(y) == 0:
        return y, np.zeros(0), np.zeros(0)
    rep = _clusters(y, share, -torch.arange(len(y), dtype=torch.float64))  # in order: the first start heads
    p = y[torch.unique(rep)]
    P, T = p.flatten(1).double(), X.flatten(1).double().to(p.device)
    root_d = P.shape[1] ** 0.5
    to_train = torch.cdist(P, T, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values / root_d
    to_mean = (P - T.mean(dim=0)).norm(dim=1) / root_d
    return p, to_train.cpu().numpy(), to_mean.cpu().numpy()


def noisy_starts(X: torch.Tensor, sigmas: tuple[float, ...], per_example: int,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x_i + sigma * eps, eps ~ N(0, I), ``per_example`` draws per (sigma, i).
    -> (starts [S*n*k, ...], origin index [S*n*k], sigma [S*n*k])."""
    n = X.shape[0]
    origin = torch.arange(n).repeat_interleave(per_example).repeat(len(sigmas))
    sigma = torch.tensor(sigmas, dtype=torch.float64).repeat_interleave(n * per_example)  # exact, for lookups
    eps = torch.randn((origin.numel(), *X.shape[1:]), generator=gen, dtype=X.dtype)
    scale = sigma.to(X.dtype).reshape(-1, *[1] * (X.dim() - 1))
    return X.cpu()[origin] + scale * eps, origin, sigma


def masked_starts(X: torch.Tensor, frac: float, per_example: int, low: float, high: float,
                  gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x_i with a random ``frac`` of its coordinates replaced by U[low, high] noise.
    -> (starts [n*k, ...], origin index [n*k])."""
    origin = torch.arange(X.shape[0]).repeat_interleave(per_example)
    base = X.cpu()[origin]
    mask = torch.rand(base.shape, generator=gen) < frac
    noise = low + (high - low) * torch.rand(base.shape, generator=gen, dtype=X.dtype)
    return torch.where(mask, noise, base), origin


KINK_NUDGE = 1e-6   # the spectra are evaluated again this far (relative to ||x||) from a memory ...
KINK_BAND = 0.1     # ... where its rho lies within this of the attractor threshold 1 - rho_margin


def attractors(found: np.ndarray, rho: np.ndarray, rho_margin: float) -> np.ndarray:
    """attractor_i = x_i has a memory x_i* (``Memories.found``: iteration from x_i and from points
    beside it converges to one point within memory_tol of x_i) and rho(J_f(x_i*)) < 1 - rho_margin at
    that limit point. ``rho``: [n] at the memories (NaN where none)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(found, bool) & (np.asarray(rho) < 1 - rho_margin)


def kink_spread(f: Map, Y: torch.Tensor, rho: np.ndarray, rho_margin: float, gen: torch.Generator,
                k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """How far rho moves within KINK_NUDGE of each point y of ``Y`` (a ReLU-like net's Jacobian jumps
    where a unit sits at its kink): rho is evaluated again at k points KINK_NUDGE ||y|| away, for the
    points whose ``rho`` lies within KINK_BAND of 1 - rho_margin (elsewhere a decision cannot flip,
    and the spread is NaN: not measured). -> (spread = max - min of the k + 1 values, unsure = the
    attractor decision rho < 1 - rho_margin differs among them)."""
    spread = np.full(len(Y), np.nan)
    unsure = np.zeros(len(Y), bool)
    rows = np.flatnonzero(np.abs(np.asarray(rho) - (1 - rho_margin)) < KINK_BAND)
    if rows.size:
        near = memory_starts(Y[rows], gen, k, KINK_NUDGE)
        again, _ = spectra(f, near)
        vals = np.concatenate([np.asarray(rho)[rows, None], again.reshape(len(rows), k)], axis=1)
        spread[rows] = vals.max(axis=1) - vals.min(axis=1)
        below = vals < 1 - rho_margin
        unsure[rows] = below.any(axis=1) & ~below.all(axis=1)
    return spread, unsure


def basin_radius(same: np.ndarray, origin: np.ndarray, sigma: np.ndarray, n: int) -> np.ndarray:
    """Per example i: the largest tested sigma such that at least half of i's noisy starts came back
    to i's memory at that sigma *and at every smaller tested sigma* (0 if not even at the smallest):
    radius_i = max { s : rate_i(s') >= 0.5 for every tested s' <= s }. Monotone by definition, so a
    lucky pass at a large sigma after a failure at a smaller one does not count.
    same, origin, sigma: [m] per start -> [n]."""
    out, holding = np.zeros(n), np.ones(n, dtype=bool)
    for s in np.unique(sigma):  # ascending
        at = sigma == s
        rate = np.bincount(origin[at], weights=same[at], minlength=n) / np.maximum(np.bincount(origin[at], minlength=n), 1)
        holding &= rate >= 0.5
        out = np.where(holding, s, out)
    return out


# --- span ------------------------------------------------------------------------------------------

def span_basis(X: torch.Tensor, rtol: float = 1e-6) -> torch.Tensor:
    """Orthonormal basis U of span(X) from the SVD of X^T (rank-revealing), so P_X = U U^T.
    X: [n, ...] -> U: [d, r]."""
    U, s, _ = torch.linalg.svd(X.flatten(1).T.double(), full_matrices=False)
    return U[:, s > rtol * s.max()]


@torch.no_grad()
def span_residuals(f: Map, X: torch.Tensor, H: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """For held-out points h: ||(I - P_X) f(h)|| / ||f(h)||  (is the output in the span of the
    training set?) and ||f(h) - f(P_X h)|| / ||f(h)||  (does f ignore the off-span part of its
    input? C1's "nonlinear span").   X: [n, ...], H: [m, ...] -> ([m], [m])."""
    U = span_basis(X)
    fh = f(H).flatten(1).double()
    proj_out = fh @ U @ U.T
    norm = fh.norm(dim=1).clamp_min(1e-12)
    ph = (H.flatten(1).double() @ U @ U.T).to(H.dtype).reshape(H.shape)
    f_ph = f(ph).flatten(1).double()
    return (((fh - proj_out).norm(dim=1) / norm).cpu().numpy(), ((fh - f_ph).norm(dim=1) / norm).cpu().numpy())


# --- linear operators (C3) -------------------------------------------------------------------------

def linear_operator(f: Map, shape: tuple[int, ...]) -> torch.Tensor:
    """The d x d matrix A of a linear map f (a bias-free net with identity activations), read off as
    its Jacobian at 0: column j is f(e_j). For any x, f(x) = A vec(x).   shape: one example's shape."""
    return jacobians_dense(f, torch.zeros(1, *shape))[0]


@dataclass
class OperatorSpectrum:
    eigenvalues: np.ndarray       # [d] complex, sorted by decreasing modulus
    near_one: int                 # eigenvalues with |lambda - 1| < tol: the directions the map keeps
    near_one_in_span: int         # dim(E_1 intersect span(X)), E_1 their eigenspace (principal angles)
    span_dim: int                 # rank of the training set
    rest_radius: float            # max |lambda| over the other eigenvalues (0 if none): < 1 means
                                  # iterating A pulls every start onto E_1

    def memorizes(self) -> bool:
        return bool(acts_like_projection(self.near_one, self.near_one_in_span, self.span_dim, self.rest_radius))


def operator_spectrum(A: torch.Tensor, X: torch.Tensor, tol: float = 1e-2) -> OperatorSpectrum:
    """Eigen-decomposition of a linear autoencoder's operator A against its training set X: which
    eigenvalues are ~1 (kept directions), and how much of their eigenspace E_1 lies in span(X),
    counted as the principal angles between E_1 and span(X) with cosine > 1 - tol, and the largest
    modulus among the other eigenvalues (rest_radius). A memorizing linear map behaves like P_X:
    near_one = near_one_in_span = rank(X) and rest_radius < 1, so x <- Ax converges onto span(X).
    The identity keeps everything (near_one = d); a shallow, banded conv operator cannot single
    out span(X) (C3).
    A: [d, d], X: [n, ...]."""
    vals, vecs = np.linalg.eig(A.double().cpu().numpy())
    order = np.argsort(-np.abs(vals))
    vals, vecs = vals[order], vecs[:, order]
    U = span_basis(X).cpu().numpy()
    ones = np.abs(vals - 1) < tol
    inside = 0
    if ones.any():
        V = np.concatenate([vecs[:, ones].real, vecs[:, ones].imag], axis=1)
        Q, sv, _ = np.linalg.svd(V, full_matrices=False)
        Q = Q[:, sv > 1e-8 * sv.max()]  # an orthonormal basis of E_1
        inside = int((np.linalg.svd(U.T @ Q, compute_uv=False) > 1 - tol).sum())
    rest = np.abs(vals[~ones])
    return OperatorSpectrum(vals, int(ones.sum()), inside, U.shape[1], float(rest.max()) if rest.size else 0.0)
