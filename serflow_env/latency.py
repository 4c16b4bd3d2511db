"""End-to-end latency distribution of the requests of one control interval, for many envs.

A request's latency is the sum, over the stages it passes, of its wait, cold start and service
time, plus the transfers between stages. Each part is a probability mass on a lattice of spacing
``h`` (nearest-point rounding) over ``[0, span)``; mass beyond the span is counted as late. Sums
are products in the Fourier domain (an FFT of twice the span, so sums of two in-span parts never
wrap), the route taken at each stage (VM or function) is a two-state recursion, and the mix of
exit stages is a weighted sum, so one inverse FFT per env gives the whole distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serflow_env import distributions
from serflow_env.scenario import Scenario

VM, FAAS = 0, 1
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class LatencyStats:
    """Per-env latency summary of an interval (seconds; violation probability in [0, 1])."""

    violation_probability: np.ndarray  # (N,) P(latency > deadline) for a completed request
    quantiles_s: np.ndarray  # (N, 3) p50, p95, p99; capped at the span when beyond it


class LatencyModel:
    """Static Fourier transforms of a scenario's service, cold-start and transfer delays."""

    def __init__(self, scenario: Scenario) -> None:
        self.deadline_s = scenario.slo_deadline_s
        self.bins = scenario.latency_bins
        self.span_s = scenario.latency_span * scenario.slo_deadline_s
        self.step_s = self.span_s / self.bins
        self.fft_len = 2 * self.bins
        freqs = np.arange(self.bins + 1)
        self._z = np.exp(-2j * np.pi * freqs / self.fft_len).astype(np.complex128)
        self._z_trunc = self._z ** (self.bins - 1)
        k = scenario.num_stages
        bins, h = self.bins, self.step_s

        def ft(pmf: np.ndarray) -> np.ndarray:
            return np.fft.rfft(pmf, n=self.fft_len)

        self.service_ft = np.empty((k, 2, bins + 1), dtype=np.complex128)
        for i, stage in enumerate(scenario.stages):
            self.service_ft[i, VM] = ft(distributions.lattice_pmf(stage.vm_service, h, bins))
            self.service_ft[i, FAAS] = ft(
                distributions.lattice_pmf(stage.faas_service_time, h, bins))
        self.cold_ft = ft(distributions.lattice_pmf(scenario.faas.cold_start, h, bins))
        links = scenario.transfer
        self.transfer_ft = np.empty((max(k - 1, 0), 2, 2, bins + 1), dtype=np.complex128)
        for i in range(k - 1):
            size = scenario.stages[i].activation_mb
            delays = {
                (VM, VM): links.vm_to_vm.delay_s(size),
                (VM, FAAS): links.cross_service.delay_s(size),
                (FAAS, VM): links.cross_service.delay_s(size),
                (FAAS, FAAS): links.faas_to_faas.delay_s(size),
            }
            for (src, dst), delay in delays.items():
                self.transfer_ft[i, src, dst] = self._shift_ft(np.array([delay]))[0]

    def _shift_ft(self, delay_s: np.ndarray) -> np.ndarray:
        """Fourier transform of a fixed delay, split linearly between its two lattice points.

        Parts that land at or beyond the span are dropped (counted as late).
        """
        pos = np.asarray(delay_s, dtype=float)[:, None] / self.step_s
        lower = np.floor(pos)
        frac = pos - lower
        w_lo = np.where(lower < self.bins, 1.0 - frac, 0.0)
        w_hi = np.where(lower + 1 < self.bins, frac, 0.0)
        lower = np.minimum(lower, self.bins)
        angle = -2.0 * np.pi * np.arange(self.bins + 1)[None, :] / self.fft_len
        base = np.exp(1j * angle * lower)
        return base * (w_lo + w_hi * self._z[None, :])

    def _wait_ft(self, mean_s: np.ndarray) -> np.ndarray:
        """Transform of an exponential wait with the given mean, on the lattice, truncated."""
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            q = np.exp(-self.step_s / np.maximum(mean_s, 1e-300))[..., None]
        sq = np.sqrt(q)
        qz = q * self._z
        tail = (1.0 - q) * sq * self._z * (1.0 - q ** (self.bins - 1) * self._z_trunc)
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = np.where(np.abs(1.0 - qz) > 1e-12, tail / (1.0 - qz), 0.0)
        return (1.0 - sq) + tail

    def compute(
        self,
        faas_share: np.ndarray,  # (N, K) share of stage-k requests served in functions
        wait_probability: np.ndarray,  # (N, K) P(VM request queues) in the quasi-stationary part
        wait_mean_s: np.ndarray,  # (N, K) mean of that queueing delay given it happens
        backlog_share: np.ndarray,  # (N, K) share of VM requests delayed behind overload backlog
        backlog_delay_s: np.ndarray,  # (N, K) that delay
        cold_share: np.ndarray,  # (N, K) share of function requests that met a cold start
        exit_weights: np.ndarray,  # (N, K) share of completed requests exiting after stage k
    ) -> LatencyStats:
        n, k = faas_share.shape
        wait_ft = self._wait_ft(wait_mean_s)  # (N, K, F)
        wait_ft *= wait_probability[..., None]
        wait_ft += (1.0 - wait_probability)[..., None]
        delayed = backlog_share > 0
        if np.any(delayed):
            shift = self._shift_ft(backlog_delay_s[delayed])
            wb = backlog_share[delayed][:, None]
            wait_ft[delayed] *= (1.0 - wb) + wb * shift
        vm_ft = wait_ft * self.service_ft[None, :, VM]
        vm_ft *= (1.0 - faas_share)[..., None]
        faas_ft = (1.0 - cold_share)[..., None] + cold_share[..., None] * self.cold_ft
        faas_ft *= self.service_ft[None, :, FAAS]
        faas_ft *= faas_share[..., None]
        total = np.zeros((n, self.bins + 1), dtype=np.complex128)
        psi_vm, psi_faas = vm_ft[:, 0], faas_ft[:, 0]
        for i in range(k):
            if i > 0:
                t = self.transfer_ft[i - 1]
                into_vm = psi_vm * t[VM, VM] + psi_faas * t[FAAS, VM]
                into_faas = psi_vm * t[VM, FAAS] + psi_faas * t[FAAS, FAAS]
                psi_vm = into_vm * vm_ft[:, i]
                psi_faas = into_faas * faas_ft[:, i]
            total += exit_weights[:, i, None] * (psi_vm + psi_faas)
        pmf = np.fft.irfft(total, n=self.fft_len)[:, : self.bins]
        np.clip(pmf, 0.0, None, out=pmf)
        return self._summarise(pmf)

    def _summarise(self, pmf: np.ndarray) -> LatencyStats:
        cum = np.cumsum(pmf, axis=1)  # cum[j] = P(latency < (j + 0.5) h)
        x = self.deadline_s / self.step_s - 0.5
        j = int(np.floor(x))
        frac = x - j
        below = (cum[:, j] if j >= 0 else 0.0) + frac * pmf[:, j + 1] if j + 1 < self.bins \
            else cum[:, -1]
        violation = np.clip(1.0 - below, 0.0, 1.0)
        quantiles = np.empty((pmf.shape[0], len(QUANTILES)))
        rows = np.arange(pmf.shape[0])
        for qi, q in enumerate(QUANTILES):
            reached = cum >= q
            idx = np.argmax(reached, axis=1)
            ok = reached[rows, idx]
            prev_cum = np.where(idx > 0, cum[rows, idx - 1], 0.0)
            mass = np.maximum(pmf[rows, idx], 1e-300)
            within = np.clip((q - prev_cum) / mass, 0.0, 1.0)
            value = (idx - 0.5 + within) * self.step_s
            value = np.where(idx == 0, within * 0.5 * self.step_s, value)
            quantiles[:, qi] = np.where(ok, np.maximum(value, 0.0), self.span_s)
        return LatencyStats(violation, quantiles)


def _raw_moments_of(service_mean: float, cv: float, distribution: str) -> np.ndarray:
    """E[S], E[S^2], E[S^3] of a service-time distribution."""
    m = service_mean
    if distribution == "deterministic":
        return np.array([m, m**2, m**3])
    if distribution == "exponential":
        return np.array([m, 2 * m**2, 6 * m**3])
    mu, sigma = distributions.lognormal_params(m, cv)
    return np.exp(np.arange(1, 4) * mu + 0.5 * np.arange(1, 4) ** 2 * sigma**2)


def _cumulants(m1: np.ndarray, m2: np.ndarray, m3: np.ndarray) -> tuple[np.ndarray, ...]:
    return m1, np.maximum(m2 - m1 * m1, 0.0), m3 - 3 * m1 * m2 + 2 * m1**3


def _raw(k1: np.ndarray, k2: np.ndarray, k3: np.ndarray) -> tuple[np.ndarray, ...]:
    return k1, k2 + k1 * k1, k3 + 3 * k2 * k1 + k1**3


class MomentLatency:
    """Fast latency model: three cumulants per path, shifted log-normal fits, a few mixtures.

    Per stage, the VM part (quasi-stationary wait + service) and the function part (service)
    are mixed by the route shares and summed over the stages of each exit class by adding
    cumulants (Fenton-Wilkinson in spirit, with skewness kept). Cold starts and waits behind
    an overload backlog are rare, large delays: they are kept as separate mixture components
    per exit class (the path met no big delay; only backlog waits; at least one cold start, of
    which a second is not added). Each component is a shifted log-normal with the component's
    mean, variance and skewness.
    """

    #: CDF evaluation points, in deadlines (the deadline itself is one of them)
    GRID = np.array([0.03, 0.05, 0.08, 0.11, 0.15, 0.2, 0.25, 0.3, 0.37, 0.45, 0.55, 0.65, 0.77,
                     0.9, 1.0, 1.15, 1.35, 1.6, 2.0, 2.5, 3.2, 4.0, 5.5, 8.0, 11.0, 16.0])

    def __init__(self, scenario: Scenario) -> None:
        self.deadline_s = scenario.slo_deadline_s
        self.span_s = scenario.latency_span * scenario.slo_deadline_s
        k = scenario.num_stages
        self.vm_moments = np.stack([_raw_moments_of(s.vm_service.mean_s, s.vm_service.cv,
                                                     s.vm_service.distribution)
                                    for s in scenario.stages])  # (K, 3)
        self.faas_moments = np.stack([
            _raw_moments_of(t.mean_s, t.cv, t.distribution)
            for t in (s.faas_service_time for s in scenario.stages)])
        cold = scenario.faas.cold_start
        self.cold_moments = _raw_moments_of(cold.mean_s, cold.cv, cold.distribution)
        links = scenario.transfer
        self.transfer_delay = np.zeros((max(k - 1, 0), 2, 2))
        for i in range(k - 1):
            size = scenario.stages[i].activation_mb
            self.transfer_delay[i] = [
                [links.vm_to_vm.delay_s(size), links.cross_service.delay_s(size)],
                [links.cross_service.delay_s(size), links.faas_to_faas.delay_s(size)],
            ]
        grid = self.GRID * self.deadline_s
        self.grid_s = grid[grid <= self.span_s + 1e-12]
        self.deadline_index = int(np.argmin(np.abs(self.grid_s - self.deadline_s)))

    def compute(self, faas_share, wait_probability, wait_mean_s, backlog_share, backlog_delay_s,
                cold_share, exit_weights) -> LatencyStats:
        w = faas_share
        pw, th = wait_probability, wait_mean_s
        # VM part: wait (0 or exponential) + service; cumulants add
        wk = _cumulants(pw * th, 2 * pw * th**2, 6 * pw * th**3)
        sk = _cumulants(*(self.vm_moments[None, :, j] for j in range(3)))
        vm_raw = _raw(*(a + b for a, b in zip(wk, sk)))
        faas_raw = tuple(self.faas_moments[None, :, j] for j in range(3))
        mix = [(1 - w) * v + w * f for v, f in zip(vm_raw, faas_raw)]
        stage_k = _cumulants(*mix)  # each (N, K)
        # transfers into stage i from i-1, by the route pair
        if self.transfer_delay.shape[0]:
            src = np.stack([1 - w[:, :-1], w[:, :-1]], -1)[..., :, None]
            dst = np.stack([1 - w[:, 1:], w[:, 1:]], -1)[..., None, :]
            pair = src * dst  # (N, K-1, 2, 2)
            d = self.transfer_delay[None]
            t_raw = [(pair * d**p).sum(axis=(-1, -2)) for p in (1, 2, 3)]
            t_k = _cumulants(*t_raw)
            stage_k = tuple(np.concatenate([a[:, :1], a[:, 1:] + b], axis=1)
                            for a, b in zip(stage_k, t_k))
        base = tuple(np.cumsum(a, axis=1) for a in stage_k)  # per exit class (N, K)
        # big delays: a path meets no big delay, only overload-backlog waits, or a cold start
        e_cold = w * cold_share
        e_back = (1 - w) * backlog_share
        no_cold = np.cumprod(1 - e_cold, axis=1)
        none = np.cumprod(np.clip(1 - e_cold - e_back, 0.0, 1.0), axis=1)
        back_only = np.clip(no_cold - none, 0.0, 1.0)
        b_cum = np.maximum(np.cumsum(e_back, axis=1), 1e-300)
        back_raw = [np.cumsum(e_back * backlog_delay_s**p, axis=1) / b_cum for p in (1, 2, 3)]
        with_back = tuple(a + b for a, b in zip(base, _cumulants(*back_raw)))
        cold_k = _cumulants(*self.cold_moments)
        with_cold = tuple(a + b for a, b in zip(base, cold_k))
        weights = np.concatenate([exit_weights * none, exit_weights * back_only,
                                  exit_weights * (1 - no_cold)], axis=1)
        comps = [np.concatenate(parts, axis=1) for parts in zip(base, with_back, with_cold)]
        # only components that carry probability are evaluated (most envs have no big delay)
        active = weights > 1e-9
        rows = np.nonzero(active)[0]
        cdf = _shifted_lognormal_cdf(*(c[active] for c in comps), self.grid_s)  # (M, G)
        cdf *= weights[active][:, None]
        total = np.zeros((weights.shape[0], self.grid_s.size))
        _segment_sum(total, rows, cdf)
        total = np.maximum.accumulate(np.clip(total, 0.0, 1.0), axis=1)
        violation = 1.0 - total[:, self.deadline_index]
        quantiles = np.stack([_invert(total, self.grid_s, q, self.span_s) for q in QUANTILES], 1)
        return LatencyStats(np.clip(violation, 0.0, 1.0), quantiles)


def _segment_sum(total: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """total[r] += sum of values whose row is r, for sorted ``rows`` (faster than add.at)."""
    if rows.size == 0:
        return
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    total[rows[starts]] += np.add.reduceat(values, starts, axis=0)


def _shifted_lognormal_cdf(k1: np.ndarray, k2: np.ndarray, k3: np.ndarray,
                           grid: np.ndarray) -> np.ndarray:
    """CDF on ``grid`` of shifted log-normals matching mean k1, variance k2, third cumulant k3.

    Skewness g gives u = sqrt(exp(sigma^2) - 1) from u^3 + 3u = g (Cardano); skewness is
    clipped to [1e-3, 50] (a tiny skew is a nearly normal fit); zero variance is a step at the
    mean.
    """
    std = np.sqrt(np.maximum(k2, 0.0))
    safe_std = np.maximum(std, 1e-12)
    g = np.where(std > 0, k3 / safe_std**3, 0.0)
    g = np.clip(g, 1e-3, 50.0)
    r = np.sqrt(g * g / 4 + 1)
    u = np.cbrt(g / 2 + r) + np.cbrt(g / 2 - r)
    omega = 1 + u * u
    sigma = np.sqrt(np.log(omega))
    scale = safe_std / (u * np.sqrt(omega))  # exp(m)
    shift = k1 - scale * np.sqrt(omega)
    cdf = grid[None, :] - shift[:, None]  # computed in place: log, standardise, normal CDF
    np.maximum(cdf, 1e-300, out=cdf)  # at or below the shift: z hugely negative, CDF 0
    np.log(cdf, out=cdf)
    cdf -= np.log(scale)[:, None]
    cdf /= sigma[:, None]
    _normal_cdf_inplace(cdf)
    degenerate = std <= 1e-12
    if degenerate.any():
        cdf[degenerate] = grid[None, :] >= k1[degenerate, None]
    return cdf


def _normal_cdf_inplace(z: np.ndarray) -> None:
    """Standard normal CDF, in place, by the logistic approximation of Bowling et al. (2009):
    1 / (1 + exp(-1.5976 z - 0.07056 z^3)), absolute error below 1.4e-4, about twice as fast
    as an erfc-based CDF on this hot path."""
    np.clip(z, -9.0, 9.0, out=z)  # beyond, the CDF is 0 or 1 to 1e-19
    t = z * z
    t *= -0.07056
    t -= 1.5976
    t *= z
    np.exp(t, out=t)
    t += 1.0
    np.divide(1.0, t, out=z)


def _invert(cdf: np.ndarray, grid: np.ndarray, q: float, cap: float) -> np.ndarray:
    """Quantile q by log-linear interpolation of a CDF tabulated on ``grid`` (N, G)."""
    reached = cdf >= q
    idx = np.argmax(reached, axis=1)
    ok = reached[np.arange(cdf.shape[0]), idx]
    rows = np.arange(cdf.shape[0])
    hi = cdf[rows, idx]
    lo_idx = np.maximum(idx - 1, 0)
    lo = np.where(idx > 0, cdf[rows, lo_idx], 0.0)
    frac = np.clip((q - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)
    log_g = np.log(grid)
    lo_g = np.where(idx > 0, log_g[lo_idx], log_g[0] - 1.0)
    value = np.exp(lo_g + frac * (log_g[idx] - lo_g))
    value = np.where(idx > 0, value, frac * grid[0])
    return np.where(ok, value, cap)
