"""Closed-form multi-server queueing quantities, vectorized over numpy arrays.

Used by the fast model's pointwise-stationary waiting-time approximation (Erlang-C with
Kimura's M/M/c-M/D/c interpolation for non-exponential service), and for queues with a
limit, the stationary law of a diffusion reflected at 0 and at the limit; independently
re-derived by tests.
"""

from __future__ import annotations

import numpy as np
from scipy import special

_LOG_FACTORIALS = special.gammaln(np.arange(4097) + 1.0)  # log(c!) for c = 0..4096


def _log_factorial(c: np.ndarray) -> np.ndarray:
    """log(c!) = gammaln(c + 1): from a table when every c is a whole number up to 4096
    (server counts usually are; ~10x faster than gammaln), else from gammaln."""
    whole = c.astype(np.int64)
    # the cheapest test first: fractional server counts (cold-start storms) fail it
    if whole.size and (whole == c).all() and whole.min() >= 0 \
            and whole.max() < _LOG_FACTORIALS.size:
        return _LOG_FACTORIALS[whole]
    return special.gammaln(c + 1.0)


def erlang_b(servers: np.ndarray, offered_load: np.ndarray) -> np.ndarray:
    """Blocking probability of M/M/c/c: B(c, a) = pois(c; a) / P(Pois(a) <= c).

    Uses the regularised incomplete gamma function so that it is O(1) per element for any c.
    Under light load (a <= (c + 1) / 2 and pois(c; a) < e^-20) the tail beyond c is below
    pois(c; a), so P(Pois(a) <= c) is 1 to 2e-9 and B = pois(c; a) < 2e-9 to an absolute
    error below 1e-17; the costly incomplete gamma is skipped there.
    """
    c = np.asarray(servers, dtype=float)
    a = np.asarray(offered_load, dtype=float)
    if c.shape != a.shape:
        c, a = np.broadcast_arrays(c, a)
    safe_a = np.maximum(a, 1e-300)
    log_pmf = c * np.log(safe_a)
    log_pmf -= safe_a
    log_pmf -= _log_factorial(c)
    c1 = c + 1.0
    heavy = 2.0 * a > c1
    heavy |= log_pmf > -20.0
    if heavy.all():
        cdf = special.gammaincc(c1, safe_a)
    else:
        cdf = np.ones(log_pmf.shape)
        cdf[heavy] = special.gammaincc(c1[heavy], safe_a[heavy])
    b = np.exp(log_pmf, out=np.empty(np.shape(log_pmf)))
    positive = cdf > 0
    np.divide(b, cdf, out=b, where=positive)  # 1 where the tail is all the mass
    b[~positive] = 1.0
    np.minimum(np.maximum(b, 0.0, out=b), 1.0, out=b)
    idle = (a <= 0) | (c <= 0)
    if idle.any():
        b[idle] = c[idle] <= 0  # no servers: all blocked; no load: none
    return b


def erlang_c(servers: np.ndarray, offered_load: np.ndarray) -> np.ndarray:
    """P(wait > 0) in M/M/c with c servers and offered load a = lambda/mu (1 when a >= c)."""
    c = np.asarray(servers, dtype=float)
    a = np.asarray(offered_load, dtype=float)
    b = erlang_b(c, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(c > 0, a / np.maximum(c, 1e-300), np.inf)
        p = b / (1.0 - rho * (1.0 - b))
    return np.where(rho < 1.0, np.minimum(np.maximum(p, 0.0), 1.0), 1.0)


def mgc_wait(
    servers: np.ndarray, arrival_rate: np.ndarray, mean_service_s: np.ndarray,
    service_cv: np.ndarray, arrival_scv: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise-stationary M/G/c waiting time: (P(wait > 0), mean wait given wait > 0).

    Erlang-C gives P(wait > 0) and the M/M/c mean wait W_M = C / (c mu - lambda). The M/G/c
    mean wait is the two-moment system interpolation of Kimura (Queueing Systems 17, 1994,
    347-382; after Boxma, Cohen and Huffels, 1979) between M/M/c and M/D/c in 1 / W,

        W = (1 + cs^2) / (2 cs^2 / W_M + (1 - cs^2) / W_D),

    with W_D Cosmetatos' M/D/c correction of Erlang-C (INFOR 13, 1975, 328-331),
    W_D = W_M (1 + d) / 2 with d = (1 - rho)(c - 1)(sqrt(4 + 5c) - 2) / (16 rho c), capped
    at W_M. So W / W_M = (1 + cs^2)(1 + d) / (2 (1 + cs^2 d)): Pollaczek-Khinchine for c = 1,
    and where Allen-Cunneen's (1 + cs^2) / 2 is 15-33 % low for deterministic and 50-100 %
    high for log-normal cv = 2 service at rho = 0.6 (c = 8, 32), this is within 10 %
    (tests/test_queueing.py). A non-Poisson arrival stream of squared coefficient of
    variation ca^2 scales it by (ca^2 + cs^2) / (1 + cs^2), Allen-Cunneen's arrival term.
    Given a wait it is exponential with that conditional mean. Unstable queues (rho >= 1)
    return P = 1 and an infinite conditional mean; callers handle overload as backlog.
    """
    c = np.asarray(servers, dtype=float)
    lam = np.asarray(arrival_rate, dtype=float)
    mean_s = np.asarray(mean_service_s, dtype=float)
    a = lam * mean_s
    p_wait = erlang_c(c, a)
    slack = c / mean_s - lam
    with np.errstate(divide="ignore"):
        cond = np.where(slack > 0, 1.0 / np.maximum(slack, 1e-300), np.inf)
    scv = np.asarray(service_cv, dtype=float) ** 2
    rho = np.maximum(a / np.maximum(c, 1e-300), 1e-12)
    d = np.maximum(c - 1.0, 0.0) * (1.0 - rho) * (np.sqrt(4.0 + 5.0 * np.maximum(c, 0.0))
                                                  - 2.0) / (16.0 * rho * np.maximum(c, 1.0))
    d = np.minimum(np.maximum(d, 0.0), 1.0)  # W_D <= W_M
    ratio = (1.0 + scv) * (1.0 + d) / (2.0 * (1.0 + scv * d))
    cond = cond * ratio * (np.asarray(arrival_scv, dtype=float) + scv) / (1.0 + scv)
    return p_wait, cond


def reflected_queue_moments(kappa: np.ndarray, limit: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E[X], E[X^2], E[X^3] of the stationary law of a Brownian motion reflected at 0 and at
    ``limit``, of drift theta and variance rate sigma^2, kappa = 2 theta / sigma^2: the density
    is proportional to exp(kappa x) on [0, limit] (uniform for kappa = 0).

    With r = |kappa|, u = r limit and E = e^u - 1, the distance Y from the end the density
    rises towards is a truncated exponential: E[Y] = 1/r - L/E, E[Y^2] = 2/r^2 - (L^2 +
    2L/r)/E, E[Y^3] = 6/r^3 - (L^3 + 3L^2/r + 6L/r^2)/E; X = L - Y for kappa > 0. Below
    u = 1e-3, where these cancel, the uniform law's moments to first order in kappa.
    """
    kappa = np.asarray(kappa, dtype=float)
    big = np.broadcast_to(np.asarray(limit, dtype=float), kappa.shape)
    r = np.abs(kappa)
    u = r * big
    flat = u < 1e-3  # nearly uniform: the series would cancel
    safe_r = np.where(flat, 1.0, r)
    with np.errstate(over="ignore"):
        e = np.expm1(np.where(flat, 1.0, np.minimum(u, 700.0)))
    inv = 1.0 / safe_r
    y1 = inv - big / e
    y2 = 2.0 * inv * inv - (big * big + 2.0 * big * inv) / e
    y3 = 6.0 * inv ** 3 - (big ** 3 + 3.0 * big * big * inv + 6.0 * big * inv * inv) / e
    rising = kappa > 0  # mass near the limit: X = L - Y
    x1 = np.where(rising, big - y1, y1)
    x2 = np.where(rising, big * big - 2.0 * big * y1 + y2, y2)
    x3 = np.where(rising, big ** 3 - 3.0 * big * big * y1 + 3.0 * big * y2 - y3, y3)
    # nearly uniform: E[X^n] = L^n / (n + 1) + kappa L^(n+1) n / (2 (n + 1)(n + 2)) + O(u^2)
    near = [big ** n / (n + 1) + kappa * big ** (n + 1) * n / (2.0 * (n + 1) * (n + 2))
            for n in (1, 2, 3)]
    return (np.where(flat, near[0], x1), np.where(flat, near[1], x2),
            np.where(flat, near[2], x3))


def limited_wait_mean(wait_mean_s: np.ndarray, top_s: np.ndarray | float) -> np.ndarray:
    """Mean of an exponential wait of mean ``wait_mean_s`` cut off at ``top_s`` (the longest a
    request waits behind a full queue: its limit per slot times the mean service time),
    as the queue's reflected law at the limit gives it: ``W - top / (e^(top / W) - 1)``;
    ``top / 2`` for an unbounded W (a queue at rho = 1), never more than W."""
    w = np.asarray(wait_mean_s, dtype=float)
    top = np.broadcast_to(np.asarray(top_s, dtype=float), w.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        kappa = np.where(w > 0, -1.0 / w, -np.inf)
    finite = np.isfinite(kappa) & (w > 0)
    mean, _, _ = reflected_queue_moments(np.where(finite, kappa, 0.0), top)
    return np.where(w > 0, np.where(finite, np.minimum(mean, w), np.minimum(top / 2.0, w)), w)
