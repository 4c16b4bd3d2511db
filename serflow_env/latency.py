"""End-to-end latency distribution of the requests of one control interval, for many envs.

A request's latency is the sum, over the stages it passes, of its wait, cold start and service
time, plus the transfers between stages. Two models implement :class:`LatencyModel`, chosen by
the scenario's ``latency_model``: :class:`MomentLatency` (``moments``, the default) adds
cumulants and fits shifted log-normals (see its docstring). :class:`FourierLatency`
(``fourier``) puts each part as a probability mass on a lattice of spacing ``h``
(nearest-point rounding) over ``[0, span)``; mass beyond the span is counted as late. Sums are
products in the Fourier domain (an FFT of twice the span, so sums of two in-span parts never
wrap), the route taken at each stage (VM or function) is a two-state recursion, and the mix of
exit stages is a weighted sum, so one inverse FFT per env gives the whole distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from serflow_env import distributions
from serflow_env.scans import running
from serflow_env.scenario import Scenario

VM, FAAS = 0, 1
QUANTILES = (0.5, 0.95, 0.99)

#: where every latency model (and the reference simulator) reports an interval's CDF, in
#: deadlines: dense around the deadline, coarse in the tail (see :func:`cdf_grid_s`)
CDF_GRID = np.array([0.03, 0.05, 0.08, 0.11, 0.15, 0.2, 0.25, 0.3, 0.37, 0.45, 0.55, 0.65, 0.77,
                     0.9, 1.0, 1.15, 1.35, 1.6, 2.0, 2.5, 3.2, 4.0, 5.5, 8.0, 11.0, 16.0])


def cdf_grid_s(deadline_s: float, span_s: float, atoms_s: np.ndarray | tuple = ()
               ) -> np.ndarray:
    """The CDF grid in seconds (G,): :data:`CDF_GRID` deadlines up to the span, plus a point
    just past each of ``atoms_s`` (latencies with a probability mass of their own, where
    the CDF steps), which replaces a grid point within 0.1 % of it (never the deadline).

    Between grid points quantiles are interpolated; a step inside a cell 20-35 % wide would
    be read 0-35 % off (M/D/32 at rho = 0.6, service 0.32 deadlines: p95 +14 %), a step at a
    grid point exactly."""
    grid = CDF_GRID * deadline_s
    grid = grid[grid <= span_s + 1e-12]
    atoms = np.asarray(atoms_s, dtype=float)
    atoms = atoms[(atoms > 0) & (atoms * (1 + 1e-6) <= span_s)]
    if atoms.size == 0:
        return grid
    points = atoms * (1.0 + 1e-6)  # P(latency <= atom) in float arithmetic on both sides
    near = np.abs(grid[:, None] / points[None, :] - 1.0).min(axis=1) < 1e-3
    near &= ~np.isclose(grid, deadline_s, rtol=1e-12)
    return np.unique(np.concatenate([grid[~near], points]))


def latency_atoms_s(scenario: Scenario) -> np.ndarray:
    """Latencies that have a probability mass of their own in a scenario: a request of exit
    class k that waits nowhere and takes the VMs at every stage (or functions at every stage,
    warm) has a fixed latency when every service time on the way is deterministic (the
    transfers are fixed delays). Paths mixing the two routes are not listed."""
    atoms = []
    links = scenario.transfer
    for route in ("vm", "faas"):
        total = 0.0
        for i, stage in enumerate(scenario.stages):
            service = stage.vm_service if route == "vm" else stage.faas_service_time
            if service.effective_cv > 0:
                break
            if i > 0:
                link = links.vm_to_vm if route == "vm" else links.faas_to_faas
                total += link.delay_s(scenario.stages[i - 1].activation_mb)
            total += service.mean_s
            atoms.append(total)
    return np.array(sorted(set(atoms)))


def scenario_cdf_grid_s(scenario: Scenario) -> np.ndarray:
    """The CDF grid of a scenario (G,): :func:`cdf_grid_s` with its :func:`latency_atoms_s`,
    the one grid both simulators report ``latency_cdf`` on."""
    deadline = scenario.slo_deadline_s
    return cdf_grid_s(deadline, scenario.latency_span * deadline, latency_atoms_s(scenario))


@dataclass(frozen=True)
class LatencyStats:
    """Per-env latency summary of an interval (seconds; violation probability in [0, 1])."""

    violation_probability: np.ndarray  # (N,) P(latency > deadline) for a completed request
    quantiles_s: np.ndarray  # (N, 3) p50, p95, p99; capped at the span when beyond it
    cdf: np.ndarray  # (N, G) P(latency <= x) at the model's cdf_grid_s, for pooling intervals


class LatencyModel(Protocol):
    """What the fast model's step needs of a latency model."""

    deadline_s: float  # the SLO deadline the violation probability refers to
    span_s: float  # quantiles are capped here
    cdf_grid_s: np.ndarray  # (G,) where LatencyStats.cdf is given: scenario_cdf_grid_s

    def compute(self, faas_share: np.ndarray, wait_probability: np.ndarray,
                wait_mean_s: np.ndarray, backlog_share: np.ndarray,
                backlog_delay_s: np.ndarray, cold_share: np.ndarray,
                exit_weights: np.ndarray, *, backlog_delay_m2: np.ndarray | None = None,
                backlog_delay_m3: np.ndarray | None = None) -> LatencyStats:
        """Latency statistics of each env's completed requests from (N, K) per-stage inputs:
        the share served in functions, P(a VM request queues) in the quasi-stationary part
        and the mean of that wait, the share of VM requests delayed behind an overload backlog
        and that delay's mean (and second and third raw moments; default: a fixed delay), the
        share of function requests that met a cold start, and the share of completed requests
        exiting after each stage."""
        ...


class FourierLatency:
    """The lattice model: static Fourier transforms of a scenario's service, cold-start and
    transfer delays, combined per env and inverted by one FFT."""

    def __init__(self, scenario: Scenario) -> None:
        self.deadline_s = scenario.slo_deadline_s
        self.bins = scenario.latency_bins
        self.span_s = scenario.latency_span * scenario.slo_deadline_s
        self.step_s = self.span_s / self.bins
        self.cdf_grid_s = scenario_cdf_grid_s(scenario)
        # lattice positions of the grid points (cum[j] = P(latency < (j + 0.5) h))
        pos = np.minimum(self.cdf_grid_s / self.step_s - 0.5, self.bins - 1.0)
        self._grid_j = np.floor(pos).astype(np.int64)
        self._grid_frac = pos - self._grid_j
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
        *,
        backlog_delay_m2: np.ndarray | None = None,  # (N, K) E[delay^2] (default: fixed delay)
        backlog_delay_m3: np.ndarray | None = None,  # (N, K) E[delay^3] (unused here)
    ) -> LatencyStats:
        n, k = faas_share.shape
        wait_ft = self._wait_ft(wait_mean_s)  # (N, K, F)
        wait_ft *= wait_probability[..., None]
        wait_ft += (1.0 - wait_probability)[..., None]
        delayed = backlog_share > 0
        if np.any(delayed):
            # the backlog delay as a uniform distribution of its mean and variance (the shape
            # of a drain that moves linearly), by 3-point Gauss-Legendre quadrature
            mean = backlog_delay_s[delayed]
            second = mean * mean if backlog_delay_m2 is None else backlog_delay_m2[delayed]
            half = np.minimum(np.sqrt(3.0 * np.maximum(second - mean * mean, 0.0)), mean)
            offset = math.sqrt(0.6) * half
            shift = (5.0 * self._shift_ft(mean - offset) + 8.0 * self._shift_ft(mean)
                     + 5.0 * self._shift_ft(mean + offset)) / 18.0
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
        # the CDF at the grid points, interpolated between lattice points as the violation is
        j, frac = self._grid_j, self._grid_frac
        nxt = np.minimum(j + 1, self.bins - 1)
        at_j = np.where(j >= 0, cum[:, np.maximum(j, 0)], 0.0)
        cdf = np.clip(at_j + frac * np.where(j + 1 < self.bins, pmf[:, nxt], 0.0), 0.0, 1.0)
        return LatencyStats(violation, quantiles, cdf)


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
    return m1, np.maximum(m2 - m1 * m1, 0.0), m3 - 3 * m1 * m2 + 2 * (m1 * m1 * m1)


def _raw(k1: np.ndarray, k2: np.ndarray, k3: np.ndarray) -> tuple[np.ndarray, ...]:
    return k1, k2 + k1 * k1, k3 + 3 * k2 * k1 + k1 * k1 * k1


class MomentLatency:
    """Fast latency model: three cumulants per path, shifted log-normal fits, a few mixtures.

    Per stage, the VM part (quasi-stationary wait + service) and the function part (service)
    are mixed by the route shares and summed over the stages of each exit class by adding
    cumulants (Fenton-Wilkinson in spirit, with skewness kept). Cold starts and waits behind
    an overload backlog are rare, large delays: they are kept as separate mixture components
    per exit class (the path met no big delay; only backlog waits, the sum of those of every
    stage given at least one; at least one cold start, of which a second is not added). Each
    component is a shifted log-normal with the component's mean, variance and skewness.
    """

    #: CDF evaluation points, in deadlines (the deadline itself is one of them)
    GRID = CDF_GRID

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
        self.grid_s = self.cdf_grid_s = scenario_cdf_grid_s(scenario)
        self.deadline_index = int(np.argmin(np.abs(self.grid_s - self.deadline_s)))
        # per-stage constants as (K, 1) columns of the stage-major (K, N) layout
        self._vm_cumulants = _cumulants(*(self.vm_moments[:, j, None] for j in range(3)))
        self._faas_raw = tuple(self.faas_moments[:, j, None] for j in range(3))
        self._cold_cumulants = _cumulants(*self.cold_moments)
        # transfer delay powers d^p (K-1, 3, 4) for the route pairs VV, VF, FV, FF
        pairs = self.transfer_delay.reshape(-1, 1, 4)
        self._transfer_powers = pairs ** np.arange(1, 4)[None, :, None]
        self._log_grid = np.log(self.grid_s)
        #: where the latency has atoms (deterministic VM service), the VM waits are kept apart
        #: from the service (a mixture component of the paths that waited somewhere, as the
        #: backlog delays are) so that the no-wait paths keep their step: summed into the
        #: service's cumulants, a wait met by a few requests smears the step over the cell
        self.waits_apart = bool(any(s.vm_service.effective_cv == 0 for s in scenario.stages))

    def compute(self, faas_share, wait_probability, wait_mean_s, backlog_share, backlog_delay_s,
                cold_share, exit_weights, *, backlog_delay_m2=None,
                backlog_delay_m3=None) -> LatencyStats:
        """As :meth:`LatencyModel.compute`; the backlog delay's second and third raw moments
        (default: a fixed delay) shape its component."""
        if (backlog_delay_m2 is None) != (backlog_delay_m3 is None):
            raise ValueError("backlog_delay_m2, backlog_delay_m3: give both or neither")
        # stage-major (K, N) layout: the running sums over stages are K row operations
        w, pw, th, bs, bd, cs, ew = (
            np.ascontiguousarray(np.asarray(a, dtype=float).T)
            for a in (faas_share, wait_probability, wait_mean_s, backlog_share,
                      backlog_delay_s, cold_share, exit_weights))
        n = w.shape[1]
        # big delays: a path meets no big delay, only delays behind backlogs, or a cold start
        e_cold = w * cs
        e_back = (1 - w) * bs
        b1 = e_back * bd  # probability-weighted raw moments of the delay
        if backlog_delay_m2 is None:  # a fixed delay
            b2 = b1 * bd
            b3 = b2 * bd
        else:
            b2 = e_back * np.asarray(backlog_delay_m2, dtype=float).T
            b3 = e_back * np.asarray(backlog_delay_m3, dtype=float).T
        if self.waits_apart:  # the VM waits are delays of that kind too (see __init__)
            e_wait = (1 - w) * (1 - bs) * pw
            e_back = e_back + e_wait
            b1 = b1 + e_wait * th
            b2 = b2 + 2.0 * e_wait * th * th
            b3 = b3 + 6.0 * e_wait * th * th * th
            pw = np.zeros_like(pw)
        base = tuple(running(np.add, a) for a in self._stage_cumulants(w, pw, th))
        no_cold = running(np.multiply, 1 - e_cold)
        total = np.zeros((self.grid_s.size, n))  # grid-major (G, N) while summing
        components = []  # mixture components: their cumulants and weights (K, N)
        if np.any(e_back > 0):
            # the waits behind backlogs of every stage a path passes add up: per stage a
            # delay with probability q (given no cold start there), independent between
            # stages; the component is their sum given at least one, whose raw moments are
            # those of the sum over P(at least one) (its cumulants add over the stages)
            free = np.maximum(1 - e_cold, 1e-300)
            q = np.minimum(np.maximum(e_back / free, 0.0), 1.0)
            d1, d2, d3 = b1 / free, b2 / free, b3 / free
            with np.errstate(divide="ignore"):
                log_none = running(np.add, np.log1p(-q))  # log P(no backlog delay | no cold)
            some = -np.expm1(log_none)
            none = no_cold * np.exp(log_none)
            back_only = no_cold * some
            sums = _raw(*(running(np.add, c) for c in _cumulants(d1, d2, d3)))
            safe = np.maximum(some, 1e-300)
            with_back = tuple(a + b for a, b in zip(base, _cumulants(*(r / safe for r in sums))))
            components.append((with_back, ew * back_only))
        else:  # no backlog anywhere: "none" is "no cold start" exactly
            none = no_cold
        components.append((base, ew * none))
        with_cold = tuple(a + b for a, b in zip(base, self._cold_cumulants))
        components.append((with_cold, ew * (1 - no_cold)))
        self._add_components(total, components)
        np.clip(total, 0.0, 1.0, out=total)
        # each component's CDF rises with the grid, so their weighted sum does too
        violation = 1.0 - total[self.deadline_index]
        quantiles = _invert(total, self.grid_s, self._log_grid, np.array(QUANTILES),
                            self.span_s)
        return LatencyStats(np.minimum(np.maximum(violation, 0.0), 1.0), quantiles, total.T)

    def _stage_cumulants(self, w: np.ndarray, pw: np.ndarray, th: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cumulants (K, N) of each stage's delay: the VM part (wait, 0 or exponential, plus
        service) and the function part mixed by the route shares, plus the transfer into it."""
        w1 = pw * th
        w2 = w1 * th
        wk = _cumulants(w1, 2 * w2, 6 * w2 * th)
        vm_raw = _raw(*(a + b for a, b in zip(wk, self._vm_cumulants)))
        mix = [v + w * (f - v) for v, f in zip(vm_raw, self._faas_raw)]
        stage_k = _cumulants(*mix)
        if w.shape[0] > 1:  # transfers into stage i from i-1, by the route pair
            a, b = w[:-1], w[1:]
            not_a, not_b = 1 - a, 1 - b
            pair = np.empty((a.shape[0], 4, a.shape[1]))  # VV, VF, FV, FF (K-1, 4, N)
            np.multiply(not_a, not_b, out=pair[:, 0])
            np.multiply(not_a, b, out=pair[:, 1])
            np.multiply(a, not_b, out=pair[:, 2])
            np.multiply(a, b, out=pair[:, 3])
            t_raw = np.matmul(self._transfer_powers, pair)  # (K-1, 3, N)
            for s, t in zip(stage_k, _cumulants(t_raw[:, 0], t_raw[:, 1], t_raw[:, 2])):
                s[1:] += t
        return stage_k

    def _add_components(self, total: np.ndarray,
                        components: list[tuple[tuple[np.ndarray, ...], np.ndarray]]) -> None:
        """Add weight x CDF (on the grid) of mixture components, each its cumulants and
        weights per exit class (K, N), to ``total`` (G, N) in their order, skipping weights
        below 1e-9. Mostly active components are computed for every entry (zero weight where
        inactive) and summed over the classes in float32, sparse ones only where active; up to
        ``_MERGE_ENTRIES`` entries in all, in one :func:`_weighted_cdf` call."""
        k, n = components[0][1].shape
        parts: list[tuple[np.ndarray | None, int]] = []  # (active entries or None: all, count)
        columns: list[list[np.ndarray]] = [[], [], [], []]
        for cumulants, weight in components:
            active = weight > 1e-9
            count = int(np.count_nonzero(active))
            if count == 0:
                continue
            if 2 * count >= weight.size:
                parts.append((None, weight.size))
                values = (*(c.ravel() for c in cumulants), np.where(active, weight, 0.0).ravel())
            else:
                flat = np.flatnonzero(active)  # stage-major: one run of distinct envs per stage
                parts.append((flat, flat.size))
                values = (*(c.ravel()[flat] for c in cumulants), weight.ravel()[flat])
            for column, value in zip(columns, values):
                column.append(value)
        if not parts:
            return
        counts = [count for _, count in parts]
        if sum(counts) <= _MERGE_ENTRIES:  # one call: its fixed cost dominates
            cdf = _weighted_cdf(*(np.concatenate(c) if len(c) > 1 else c[0] for c in columns),
                                self.grid_s)
            cdfs, start = [], 0
            for count in counts:
                cdfs.append(cdf[:, start:start + count])
                start += count
        else:  # one call each, computing only the grid rows each component needs
            cdfs = [_weighted_cdf(*values, self.grid_s) for values in zip(*columns)]
        for (flat, _), part in zip(parts, cdfs):
            if flat is None:
                total += part.reshape(-1, k, n).sum(axis=1)  # float32 sum of K terms, then once
                continue
            bounds = np.searchsorted(flat, np.arange(k + 1) * n)
            for i in range(k):
                lo, hi = bounds[i], bounds[i + 1]
                if hi > lo:
                    total[:, flat[lo:hi] - i * n] += part[:, lo:hi]


def _lognormal_fit(k1: np.ndarray, k2: np.ndarray, k3: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shifted log-normals matching mean k1, variance k2, third cumulant k3: their shift,
    scale exp(m), sigma, and which are degenerate (zero variance: a step at the mean).

    Skewness g gives u = sqrt(exp(sigma^2) - 1) from u^3 + 3u = g (Cardano); skewness is
    clipped to [1e-3, 50] (a tiny skew is a nearly normal fit).
    """
    std = np.sqrt(np.maximum(k2, 0.0))
    safe_std = np.maximum(std, 1e-12)
    g = np.where(std > 0, k3 / (safe_std * safe_std * safe_std), 0.0)
    g = np.minimum(np.maximum(g, 1e-3), 50.0)
    r = np.sqrt(g * g / 4 + 1)
    # (g/2 + r)(g/2 - r) = -1: the second cube root is -1 / the first (and free of cancellation)
    c = np.cbrt(g / 2 + r)
    u = c - 1.0 / c
    root_omega = np.sqrt(1 + u * u)
    sigma = np.sqrt(2.0 * np.log(root_omega))
    scale = safe_std / (u * root_omega)
    return k1 - scale * root_omega, scale, sigma, std <= 1e-12


_F32_ONE = np.float32(1.0)
#: up to this many entries the mixture components share one _weighted_cdf call; beyond, each
#: has its own, which computes only the grid rows below its entries' z = 6 points (at
#: N = 1024 a shared call computed the rows of the widest component for all: 1.5x slower)
_MERGE_ENTRIES = 1024


def _weighted_cdf(k1: np.ndarray, k2: np.ndarray, k3: np.ndarray, weight: np.ndarray,
                  grid: np.ndarray) -> np.ndarray:
    """weight x CDF on ``grid``, grid-major (G, M), float32, of the shifted log-normals
    matching the cumulants (see ``_lognormal_fit``).

    With L = log((x - shift) / scale) and z = L / sigma, the normal CDF is the logistic
    approximation of Bowling et al. (2009), 1 / (1 + exp(-1.5976 z - 0.07056 z^3))
    (absolute error below 1.4e-4), computed in place as weight / (1 + exp(L (a + b L^2))).
    y = (x - shift) / scale - 1 = (x - shift - scale) / scale keeps its relative precision
    in float32 when the difference is taken in float64 (forming (x - shift) / scale near 1
    in float32 would cost up to 1e-4 in nearly normal fits); L = log1p(y) and the rest run
    in float32 (CDF error below 2e-7): half the memory traffic and faster log/exp than
    float64 on this hot path. At or below the shift L is very negative and the CDF 0;
    beyond |z| ~ 9 it is 0 or 1 to 1e-19 (exp overflowing to inf gives 0). Grid-major rows
    of M entries make every operation a few long contiguous loops.
    """
    shift, scale, sigma, degenerate = _lognormal_fit(k1, k2, k3)
    inv_sigma = 1.0 / sigma
    a = (-1.5976 * inv_sigma).astype(np.float32)
    b = (-0.07056 * (inv_sigma * inv_sigma * inv_sigma)).astype(np.float32)
    out = np.empty((grid.size, shift.size), dtype=np.float32)
    # beyond z = 6 (x >= shift + scale e^(6 sigma)) exp(...) < 2e-11 and the float32 CDF is
    # exactly the weight: grid rows past every entry's such point are filled, not computed
    with np.errstate(over="ignore"):  # (exp overflowing to inf: z far out, as said above)
        top = float(np.max(np.where(degenerate, k1, shift + scale * np.exp(6.0 * sigma)),
                           initial=0.0))
        rows = int(np.searchsorted(grid, top, side="right"))
        out[rows:] = weight.astype(np.float32)
        log_ratio, grid = out[:rows], grid[:rows]
        np.subtract(grid[:, None], (shift + scale)[None, :], out=log_ratio,
                    casting="same_kind")
        log_ratio *= (1.0 / scale).astype(np.float32)
        # an array bound: np.maximum with a scalar is ~3x slower than with an array here
        np.maximum(log_ratio, np.full(log_ratio.shape, -1.0 + 2.0**-23, dtype=np.float32),
                   out=log_ratio)
        np.log1p(log_ratio, out=log_ratio)
        t = log_ratio * log_ratio
        t *= b
        t += a
        t *= log_ratio
        np.exp(t, out=t)
    t += _F32_ONE
    cdf = np.divide(weight.astype(np.float32), t, out=log_ratio)  # into out's first rows
    if degenerate.any():
        cdf[:, degenerate] = weight[degenerate] * (grid[:, None] >= k1[degenerate])
    return out


def quantiles_from_cdf(cdf: np.ndarray, grid_s: np.ndarray, levels: np.ndarray | tuple,
                       cap_s: float) -> np.ndarray:
    """Quantiles (..., Q) of CDFs (..., G) tabulated on ``grid_s`` (G,), by the rule the
    models use per interval: log-linear interpolation between grid points (linear from 0 to
    the first), ``cap_s`` where a CDF never reaches the level."""
    c = np.asarray(cdf, dtype=float)
    grid = np.asarray(grid_s, dtype=float)
    if c.shape[-1] != grid.size:
        raise ValueError(f"quantiles_from_cdf: cdf {c.shape} must end in the grid's "
                         f"{grid.size} points")
    lead = c.shape[:-1]
    rows = np.maximum.accumulate(c.reshape(-1, grid.size), axis=1)  # non-decreasing
    q = _invert(np.ascontiguousarray(rows.T), grid, np.log(grid),
                np.asarray(levels, dtype=float), cap_s)
    return q.reshape(*lead, -1)


def _invert(cdf: np.ndarray, grid: np.ndarray, log_grid: np.ndarray, qs: np.ndarray,
            cap: float) -> np.ndarray:
    """Quantiles ``qs`` (N, Q) by log-linear interpolation of a non-decreasing CDF tabulated
    grid-major on ``grid`` (G, N), from the first grid point where the CDF reaches each q
    (the number of points below q); ``cap`` where none does.
    """
    g, n = cdf.shape
    q = qs[:, None]
    below = np.empty((qs.size, n), dtype=np.int64)
    small = np.uint8 if g < 256 else np.int64  # summing uint8 rows is ~5x np.count_nonzero
    for j, level in enumerate(qs):
        below[j] = np.add.reduce((cdf < level).view(np.uint8), axis=0, dtype=small)
    ok = below < g
    idx = np.minimum(below, g - 1)
    cols = np.arange(n)
    hi = cdf[idx, cols]
    first = idx == 0
    lo = np.where(first, 0.0, cdf[idx - 1 + first, cols])
    frac = np.minimum(np.maximum((q - lo) / np.maximum(hi - lo, 1e-12), 0.0), 1.0)
    lo_g = np.where(first, log_grid[0] - 1.0, log_grid[np.maximum(idx - 1, 0)])
    value = np.exp(lo_g + frac * (log_grid[idx] - lo_g))
    value = np.where(first, frac * grid[0], value)
    return np.ascontiguousarray(np.where(ok, value, cap).T)
