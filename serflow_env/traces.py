"""Request-arrival traces: loaders for real traces and synthetic generators.

A :class:`Trace` is a vector of request counts per fixed-width time bin. Real traces come
from the LIBRA format (one integer count per second) and from the Azure Functions 2019
dataset (invocations per minute); synthetic ones come from the generators below, which
return *expected* per-second counts that :meth:`Trace.sample_counts` turns into integer
arrivals with a Poisson process. Everything is vectorised with numpy so that multi-day
traces load and sample in milliseconds.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "GENERATORS",
    "ArrivalProcess",
    "Trace",
    "constant",
    "diurnal",
    "flash_crowd",
    "generate",
    "load_azure_trace",
    "load_libra_trace",
    "load_trace",
    "mmpp",
    "save_azure_trace",
    "save_libra_trace",
    "sine",
    "square",
]

ArrivalProcess = Literal["exact", "poisson"]
_ARRIVAL_PROCESSES = ("exact", "poisson")

# Relative tolerance used when checking that a resolution or a window is a whole number of
# seconds or bins (guards against float round-off such as 0.1 * 3).
_TOL = 1e-9

AZURE_META_COLUMNS = ("HashOwner", "HashApp", "HashFunction", "Trigger")
AZURE_MINUTES = 1440


# --------------------------------------------------------------------------------------
# Trace
# --------------------------------------------------------------------------------------


def _whole(x: float) -> int | None:
    """Return ``round(x)`` when ``x`` is (numerically) a positive whole number, else None."""
    n = round(x)
    if n >= 1 and abs(x - n) <= _TOL * max(1.0, abs(x)):
        return int(n)
    return None


@dataclass(frozen=True)
class Trace:
    """A request-arrival trace: counts per bin of `resolution_s` seconds.

    ``values[i]`` is the number of requests in ``[i * resolution_s, (i + 1) * resolution_s)``.
    With ``arrival_process == "exact"`` the counts are integers used as they are; with
    ``"poisson"`` they are expected counts (``values / resolution_s`` is a rate) that are
    realised as a Poisson process, e.g. by :meth:`sample_counts`. ``values`` is stored as a
    read-only float64 copy so that a trace can be shared safely between environments.
    """

    values: np.ndarray
    resolution_s: float
    arrival_process: ArrivalProcess
    name: str = "trace"
    #: source second of ``values[0]`` (a window's start in the file it was cut from), so that
    #: clock features (:mod:`serflow_env.context`) keep the source's time of day
    origin_s: float = 0.0

    def __post_init__(self) -> None:
        """Validate the fields and freeze ``values`` (raises ValueError naming the field)."""
        try:
            values = np.array(self.values, dtype=np.float64)  # always a private copy
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Trace.values must be numeric, got {type(self.values)!r}") from exc
        if values.ndim != 1:
            raise ValueError(f"Trace.values must be 1-D, got shape {values.shape}")
        if values.size == 0:
            raise ValueError("Trace.values must have at least one bin, got 0")
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"Trace.values[{i}] = {values[i]} is not finite; must be >= 0")
        if (values < 0).any():
            i = int(np.argmax(values < 0))
            raise ValueError(f"Trace.values[{i}] = {values[i]} is negative; must be >= 0")
        if self.arrival_process not in _ARRIVAL_PROCESSES:
            raise ValueError(
                f"Trace.arrival_process must be one of {_ARRIVAL_PROCESSES}, "
                f"got {self.arrival_process!r}"
            )
        if self.arrival_process == "exact":
            frac = values != np.round(values)
            if frac.any():
                i = int(np.argmax(frac))
                raise ValueError(
                    f"Trace.values[{i}] = {values[i]} is not an integer; an 'exact' trace "
                    "needs integer counts (use arrival_process='poisson' for expected counts)"
                )
        res = self.resolution_s
        if isinstance(res, bool) or not isinstance(res, Real) or not math.isfinite(res) or res <= 0:
            raise ValueError(f"Trace.resolution_s must be a finite number > 0, got {res!r}")
        if not isinstance(self.name, str):
            raise ValueError(f"Trace.name must be a str, got {type(self.name).__name__}")
        origin = self.origin_s
        if isinstance(origin, bool) or not isinstance(origin, Real) \
                or not math.isfinite(origin) or origin < 0:
            raise ValueError(f"Trace.origin_s must be a finite number >= 0, got {origin!r}")
        values.flags.writeable = False
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "resolution_s", float(res))

    # Arrays make the generated dataclass __eq__/__hash__ unusable, so define them by content.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (
            self.resolution_s == other.resolution_s
            and self.arrival_process == other.arrival_process
            and self.name == other.name
            and self.origin_s == other.origin_s
            and np.array_equal(self.values, other.values)
        )

    def __hash__(self) -> int:
        return hash((self.values.tobytes(), self.resolution_s, self.arrival_process, self.name,
                     self.origin_s))

    def __repr__(self) -> str:
        return (
            f"Trace(name={self.name!r}, bins={len(self.values)}, "
            f"resolution_s={self.resolution_s:g}, arrival_process={self.arrival_process!r}, "
            f"mean_rate={self.mean_rate:.4g}, peak_rate={self.peak_rate:.4g})"
        )

    def __len__(self) -> int:
        return len(self.values)

    @property
    def duration_s(self) -> float:
        """Length of the trace in seconds."""
        return len(self.values) * self.resolution_s

    @property
    def mean_rate(self) -> float:
        """Mean arrival rate over the whole trace, in requests per second."""
        return float(self.values.sum()) / self.duration_s

    @property
    def peak_rate(self) -> float:
        """Largest bin rate, in requests per second."""
        return float(self.values.max()) / self.resolution_s

    def _per_second(self) -> tuple[np.ndarray, np.ndarray]:
        """Counts per whole second and the fraction of each second the trace covers.

        Bins of k whole seconds are spread evenly over their k seconds; bins of 1/n s are
        summed n at a time (a trailing partial second is kept with coverage m/n).
        """
        k = _whole(self.resolution_s)
        if k is not None:
            counts = np.repeat(self.values / k, k)
            return counts, np.ones_like(counts)
        n = _whole(1.0 / self.resolution_s)
        if n is None:
            raise ValueError(
                f"Trace.resolution_s = {self.resolution_s:g} s must be a whole number of "
                "seconds or 1/n of a second to convert the trace to per-second values"
            )
        seconds = -(-len(self.values) // n)  # ceil
        padded = np.zeros(seconds * n)
        padded[: len(self.values)] = self.values
        covered = np.ones(seconds)
        covered[-1] = (len(self.values) - (seconds - 1) * n) / n
        return padded.reshape(seconds, n).sum(axis=1), covered

    def rate_per_second(self) -> np.ndarray:
        """Arrival rate (req/s) for each second of the trace, as a new float64 array.

        Coarse bins are repeated over their seconds; fine bins are averaged within each
        second. Raises ValueError if the resolution is neither k s nor 1/n s.
        """
        counts, covered = self._per_second()
        return counts / covered

    def sample_counts(self, rng: np.random.Generator) -> Trace:
        """Realise the trace as integer arrivals per second (an 'exact', 1 s trace).

        A 'poisson' trace draws each second's count from a Poisson law with the expected
        count of that second. An 'exact' trace keeps its counts: 1 s traces are returned as
        they are, finer bins are summed per second, and coarser bins are split uniformly at
        random (multinomially) over their seconds.
        """
        if self.arrival_process == "exact":
            if self.resolution_s == 1.0:
                return self
            k = _whole(self.resolution_s)
            if k is None:
                counts, _ = self._per_second()  # sums of integers: exact
            else:
                # Multinomial split of each bin over its k seconds, one binomial per slot.
                remaining = self.values.astype(np.int64)
                parts = np.empty((len(remaining), k), dtype=np.int64)
                for j in range(k - 1):
                    parts[:, j] = rng.binomial(remaining, 1.0 / (k - j))
                    remaining = remaining - parts[:, j]
                parts[:, -1] = remaining
                counts = parts.ravel()
        else:
            expected, _ = self._per_second()
            counts = rng.poisson(expected)
        return Trace(counts.astype(np.float64), 1.0, "exact", self.name, self.origin_s)

    def window(self, start_s: float, duration_s: float) -> Trace:
        """Sub-trace of `duration_s` seconds from `start_s`, wrapping around the end.

        Both must be whole multiples of `resolution_s` (call :meth:`sample_counts` first for
        a per-second trace); `start_s` is taken modulo the trace duration and `duration_s`
        may exceed it, in which case the trace repeats.
        """
        for arg, val in (("start_s", start_s), ("duration_s", duration_s)):
            if isinstance(val, bool) or not isinstance(val, Real) or not math.isfinite(val):
                raise ValueError(f"window: {arg} must be a finite number, got {val!r}")
        if duration_s <= 0:
            raise ValueError(f"window: duration_s must be > 0, got {duration_s!r}")
        start_bins = start_s / self.resolution_s
        n_bins = duration_s / self.resolution_s
        for arg, val, bins in (
            ("start_s", start_s, start_bins),
            ("duration_s", duration_s, n_bins),
        ):
            if abs(bins - round(bins)) > _TOL * max(1.0, abs(bins)):
                raise ValueError(
                    f"window: {arg} = {val!r} is not a multiple of resolution_s = "
                    f"{self.resolution_s:g} s; call sample_counts() first for a per-second trace"
                )
        idx = (round(start_bins) + np.arange(round(n_bins))) % len(self.values)
        return Trace(self.values[idx], self.resolution_s, self.arrival_process, self.name,
                     self.origin_s + round(start_bins) % len(self.values) * self.resolution_s)


# --------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------


def _existing_file(path: str | os.PathLike[str], kind: str) -> Path:
    """Return `path` as a Path, raising FileNotFoundError naming it when it is missing."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{kind} file not found: {os.fspath(path)!r}")
    return p


def _libra_line_error(lines: list[str]) -> tuple[int, str] | None:
    """Scan lines one by one to find the first malformed one (only used on the error path)."""
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            return lineno, "empty line (blank lines are only allowed at the end of the file)"
        try:
            x = float(text)
        except ValueError:
            return lineno, f"expected a non-negative integer request count, got {text[:40]!r}"
        if not math.isfinite(x):
            return lineno, f"request count {text!r} is not finite"
        if x < 0:
            return lineno, f"request count {text!r} is negative"
        if x != round(x):
            return lineno, f"request count {text!r} is not an integer"
    return None


def load_libra_trace(path: str | os.PathLike[str], name: str | None = None) -> Trace:
    """Load a LIBRA trace: line n holds the number of requests in second n.

    Surrounding whitespace, trailing blank lines, a missing final newline and integral
    floats such as ``12.0`` are accepted. A malformed line raises ``ValueError`` with a
    ``path:LINE:`` prefix. Parsing is vectorised; lines are scanned only to report errors.
    """
    p = _existing_file(path, "LIBRA trace")
    text = p.read_text(encoding="utf-8-sig").rstrip()
    if not text:
        raise ValueError(f"{p}: empty trace file; expected one non-negative integer per line")
    lines = text.splitlines()
    tokens = text.split()
    values: np.ndarray | None = None
    if len(tokens) == len(lines):  # otherwise a blank line or a line with several fields
        try:
            values = np.array(tokens, dtype=np.float64)
        except ValueError:
            values = None
    if values is None or not (
        np.isfinite(values).all() and (values >= 0).all() and (values == np.round(values)).all()
    ):
        error = _libra_line_error(lines)
        if error is not None:
            lineno, msg = error
            raise ValueError(f"{p}:{lineno}: {msg}")
        values = np.array([float(line) for line in lines])  # numpy rejected what float accepts
    return Trace(values, 1.0, "exact", p.stem if name is None else name)


def _format_columns(missing: list[str]) -> str:
    """Compact list of column names, with runs of consecutive minutes shown as ranges."""
    out: list[str] = []
    nums = sorted(int(m) for m in missing if m.isdigit())
    out.extend(repr(m) for m in missing if not m.isdigit())
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(f"'{nums[i]}'" if i == j else f"'{nums[i]}'..'{nums[j]}'")
        i = j + 1
    return ", ".join(out)


def load_azure_trace(
    path: str | os.PathLike[str],
    function: str | int | None = None,
    name: str | None = None,
) -> Trace:
    """Load an Azure Functions 2019 invocation CSV as a 60 s 'poisson' trace.

    The header is ``HashOwner,HashApp,HashFunction,Trigger,1,...,1440`` (invocations per
    minute of one day). ``function=None`` sums all rows, an int selects a row by index and a
    str selects the row(s) whose HashFunction matches (rows of the same function with
    different triggers are summed). Per-minute counts are spread over the minute as a
    Poisson process, hence ``arrival_process="poisson"``.
    """
    p = _existing_file(path, "Azure trace")
    try:
        import pandas as pd  # only this loader needs it: the env installs without pandas
    except ImportError as exc:
        raise ImportError(f"load_azure_trace({str(path)!r}): reading Azure CSVs needs pandas; "
                          "pip install 'serflow[eval]' (or pandas)") from exc
    minute_cols = [str(m) for m in range(1, AZURE_MINUTES + 1)]
    try:
        df = pd.read_csv(p, dtype={c: str for c in AZURE_META_COLUMNS}, skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{p}: empty Azure trace file") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in minute_cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"{p}: header is missing {len(missing)} minute column(s) {_format_columns(missing)}; "
            f"expected {','.join(AZURE_META_COLUMNS)},1,...,{AZURE_MINUTES}"
        )
    if len(df) == 0:
        raise ValueError(f"{p}: Azure trace has a header but no rows")

    if function is None:
        rows = np.arange(len(df))
    elif isinstance(function, Integral) and not isinstance(function, bool):
        if not 0 <= function < len(df):
            raise ValueError(
                f"{p}: function row index {function} is out of range; "
                f"the file has {len(df)} rows (0..{len(df) - 1})"
            )
        rows = np.array([int(function)])
    elif isinstance(function, str):
        if "HashFunction" not in df.columns:
            raise ValueError(f"{p}: no 'HashFunction' column to select function {function!r}")
        rows = np.flatnonzero((df["HashFunction"].astype(str).str.strip() == function).to_numpy())
        if rows.size == 0:
            raise ValueError(
                f"{p}: no row with HashFunction == {function!r} among the {len(df)} rows"
            )
    else:
        raise ValueError(
            f"function must be None, a row index or a HashFunction str, got {function!r}"
        )

    selected = df[minute_cols].iloc[rows]
    text_cols = [c for c in minute_cols if not pd.api.types.is_numeric_dtype(selected[c])]
    if text_cols:  # some cell is not a number: coerce those columns to NaN to locate it
        selected = selected.copy()
        selected[text_cols] = selected[text_cols].apply(pd.to_numeric, errors="coerce")
    block = selected.to_numpy(np.float64)
    bad = ~np.isfinite(block) | (block < 0) | (block != np.round(block))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        text = df.iloc[rows[r]][minute_cols[c]]
        raise ValueError(
            f"{p}: row {rows[r]} (line {rows[r] + 2}), minute column '{minute_cols[c]}' holds "
            f"{str(text)!r}; "
            "invocation counts must be non-negative integers"
        )
    if name is None:
        name = p.stem if function is None else f"{p.stem}:{function}"
    return Trace(block.sum(axis=0), 60.0, "poisson", name)


def load_trace(
    path: str | os.PathLike[str],
    format: Literal["auto", "libra", "azure"] = "auto",
    **kwargs: Any,
) -> Trace:
    """Load a trace in either format; "auto" picks Azure when the file starts with HashOwner."""
    if format not in ("auto", "libra", "azure"):
        raise ValueError(f"format must be 'auto', 'libra' or 'azure', got {format!r}")
    if format == "auto":
        p = _existing_file(path, "trace")
        with p.open(encoding="utf-8-sig") as fh:
            first = fh.readline().lstrip()
        format = "azure" if first.startswith("HashOwner") else "libra"
    loader = load_azure_trace if format == "azure" else load_libra_trace
    return loader(path, **kwargs)


def save_libra_trace(trace: Trace, path: str | os.PathLike[str]) -> None:
    """Write an 'exact' 1 s trace in LIBRA format (one integer count per line)."""
    if trace.arrival_process != "exact" or trace.resolution_s != 1.0:
        raise ValueError(
            "save_libra_trace needs an 'exact' trace with resolution_s = 1, got "
            f"arrival_process={trace.arrival_process!r}, resolution_s={trace.resolution_s:g}; "
            "call trace.sample_counts(rng) first"
        )
    ints = trace.values.astype(np.int64).tolist()
    Path(path).write_text("\n".join(map(str, ints)) + "\n", encoding="utf-8")


def save_azure_trace(
    rows: Sequence[tuple[str, str, str, str, np.ndarray]], path: str | os.PathLike[str]
) -> None:
    """Write one day in the Azure Functions 2019 invocation format, which :func:`load_azure_trace`
    reads: a ``HashOwner,HashApp,HashFunction,Trigger,1,...,1440`` header and one row per
    ``(owner, app, function, trigger, counts)``, ``counts`` 1,440 non-negative integers (the
    invocations in each minute of the day)."""
    if not rows:
        raise ValueError("save_azure_trace: rows is empty; give at least one function row")
    lines = [",".join((*AZURE_META_COLUMNS, *map(str, range(1, AZURE_MINUTES + 1))))]
    for i, (*meta, counts) in enumerate(rows):
        values = np.asarray(counts, dtype=np.float64)
        if values.shape != (AZURE_MINUTES,):
            raise ValueError(f"save_azure_trace: rows[{i}] has {values.size} counts; expected "
                             f"{AZURE_MINUTES} (one per minute of the day)")
        if not (np.isfinite(values).all() and (values >= 0).all()
                and (values == np.round(values)).all()):
            raise ValueError(f"save_azure_trace: rows[{i}] counts must be non-negative integers")
        if any("," in str(m) for m in meta):
            raise ValueError(f"save_azure_trace: rows[{i}] names {meta!r} must not hold commas")
        lines.append(",".join([*map(str, meta), *map(str, values.astype(np.int64).tolist())]))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------------------


def _check_duration(duration_s: Any) -> int:
    """Validate a duration in whole seconds (integral floats such as 3600.0 are accepted)."""
    if isinstance(duration_s, bool) or not isinstance(duration_s, Real):
        raise ValueError(f"duration_s must be a whole number of seconds >= 1, got {duration_s!r}")
    n = _whole(float(duration_s)) if math.isfinite(duration_s) else None
    if n is None or n != duration_s:
        raise ValueError(f"duration_s must be a whole number of seconds >= 1, got {duration_s!r}")
    return n


def _check_real(
    arg: str, value: Any, *, lo: float = 0.0, lo_open: bool = False, hi: float = math.inf
) -> float:
    """Validate a finite real in [lo, hi] (or (lo, hi] if lo_open), naming `arg` on failure."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        interval = ("(" if lo_open else "[") + f"{lo:g}, {hi:g}" + ("]" if hi < math.inf else ")")
        raise ValueError(f"{arg} must be a finite number in {interval}, got {value!r}")
    return float(value)


def _check_seed(seed: Any) -> int:
    """Validate a non-negative integer seed for numpy's default_rng."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _rate_trace(rate: np.ndarray, name: str) -> Trace:
    """Wrap per-second expected counts (clipped of float round-off below 0) as a trace."""
    return Trace(np.maximum(rate, 0.0), 1.0, "poisson", name)


def _log_cos_amplitude(peak_to_mean: float) -> float:
    """Solve exp(b) / I0(b) = peak_to_mean for b >= 0 (peak/mean of exp(b cos x)), by bisection."""
    lo, hi = 0.0, 1.0
    while math.exp(hi) / float(np.i0(hi)) < peak_to_mean:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if math.exp(mid) / float(np.i0(mid)) < peak_to_mean:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def diurnal(
    duration_s: int,
    mean_rate: float,
    peak_to_mean: float = 2.0,
    period_s: float = 86400.0,
    phase_s: float = 0.0,
    noise: float = 0.1,
    seed: int = 0,
) -> Trace:
    """Day/night cycle: log-sinusoidal rate times slow log-normal noise, mean = `mean_rate`.

    The noise-free rate is proportional to ``exp(b * cos(2 pi (t - phase_s) / period_s - pi))``
    (trough at ``phase_s``, peak half a period later), with b chosen so that peak/mean over
    a period equals `peak_to_mean`; this stays positive at night for any ratio. `noise` is
    the standard deviation of the log of a multiplicative factor that varies smoothly (knots
    every period/96, linearly interpolated). The result is renormalised to `mean_rate`.
    """
    n = _check_duration(duration_s)
    mean_rate = _check_real("mean_rate", mean_rate)
    peak_to_mean = _check_real("peak_to_mean", peak_to_mean, lo=1.0, hi=100.0)
    period_s = _check_real("period_s", period_s, lo_open=True)
    phase_s = _check_real("phase_s", phase_s, lo=-math.inf)
    noise = _check_real("noise", noise, hi=3.0)
    rng = np.random.default_rng(_check_seed(seed))

    t = np.arange(n) + 0.5  # bin centres
    b = _log_cos_amplitude(peak_to_mean)
    log_rate = b * np.cos(2 * np.pi * (t - phase_s) / period_s - np.pi)
    if noise > 0:
        knot_s = max(period_s / 96.0, 1.0)
        knots = np.arange(0.0, n + 2 * knot_s, knot_s)
        log_rate = log_rate + noise * np.interp(t, knots, rng.standard_normal(len(knots)))
    rate = np.exp(log_rate - log_rate.max())  # shift for overflow safety; renormalised below
    return _rate_trace(rate * (mean_rate / rate.mean()), "diurnal")


def mmpp(
    duration_s: int,
    rates: Sequence[float],
    mean_sojourn_s: Sequence[float] | float,
    seed: int = 0,
) -> Trace:
    """Markov-modulated Poisson process: bursty traffic switching between rate levels.

    State k emits at ``rates[k]`` req/s for an exponential time of mean ``mean_sojourn_s[k]``
    (one value for all states if a scalar) and then jumps to one of the other states
    uniformly. The initial state follows the stationary law (proportional to the mean
    sojourn), so the long-run mean rate is ``sum(rates * sojourn) / sum(sojourn)``. Each
    bin holds the integral of the rate over its second.
    """
    n = _check_duration(duration_s)
    if isinstance(rates, str | bytes) or not isinstance(rates, Sequence | np.ndarray):
        raise ValueError(f"rates must be a non-empty sequence of rates >= 0, got {rates!r}")
    if len(rates) == 0:
        raise ValueError("rates must be a non-empty sequence of rates >= 0, got []")
    r = np.array([_check_real(f"rates[{i}]", x) for i, x in enumerate(rates)])
    k = len(r)
    if isinstance(mean_sojourn_s, Sequence | np.ndarray) and not isinstance(mean_sojourn_s, str):
        if len(mean_sojourn_s) != k:
            raise ValueError(
                f"mean_sojourn_s must be a number or have one entry per rate ({k}), "
                f"got {len(mean_sojourn_s)} entries"
            )
        soj = [
            _check_real(f"mean_sojourn_s[{i}]", x, lo_open=True)
            for i, x in enumerate(mean_sojourn_s)
        ]
        sojourn = np.array(soj)
    else:
        sojourn = np.full(k, _check_real("mean_sojourn_s", mean_sojourn_s, lo_open=True))
    expected_switches = n / sojourn.mean()
    if expected_switches > 1e7:
        raise ValueError(
            f"mean_sojourn_s is too short for duration_s={n}: about {expected_switches:.3g} "
            "state changes expected (at most 1e7); use longer sojourns"
        )
    rng = np.random.default_rng(_check_seed(seed))

    # Draw state sequences in vectorised batches until they cover the duration.
    state = int(rng.choice(k, p=sojourn / sojourn.sum()))
    batch = int(1.5 * expected_switches) + 16
    states_parts: list[np.ndarray] = []
    durations_parts: list[np.ndarray] = []
    covered = 0.0
    while covered < n:
        if k > 1:
            steps = np.concatenate(([0], rng.integers(1, k, size=batch - 1)))
            states = (state + np.cumsum(steps)) % k
        else:
            states = np.zeros(batch, dtype=np.int64)
        durations = rng.exponential(size=batch) * sojourn[states]
        states_parts.append(states)
        durations_parts.append(durations)
        covered += float(durations.sum())
        state = int((states[-1] + (rng.integers(1, k) if k > 1 else 0)) % k)
    states = np.concatenate(states_parts)
    ends = np.cumsum(np.concatenate(durations_parts))
    # Cumulative expected arrivals is piecewise linear in time: interpolate it at each second.
    bounds = np.concatenate(([0.0], ends))
    cumulative = np.concatenate(([0.0], np.cumsum(r[states] * np.diff(bounds))))
    grid = np.arange(n + 1, dtype=np.float64)
    per_second = np.diff(np.interp(grid, bounds, cumulative))
    # Seconds spent in one state get its rate exactly (the differences above carry round-off
    # that grows with the cumulative count); mixed seconds are convex combinations.
    first = np.searchsorted(ends, grid[:-1], side="right")  # segment holding the second's start
    last = np.searchsorted(ends, grid[1:], side="left")  # segment holding its end
    pure = first == last
    per_second[pure] = r[states[first[pure]]]
    return _rate_trace(np.clip(per_second, r.min(), r.max()), "mmpp")


def flash_crowd(
    duration_s: int,
    base_rate: float,
    peak_rate: float,
    start_s: float,
    ramp_s: float = 30.0,
    hold_s: float = 60.0,
    decay_s: float = 300.0,
) -> Trace:
    """Flash crowd: `base_rate`, a linear ramp to `peak_rate`, a hold, then exponential decay.

    The ramp starts at `start_s` and lasts `ramp_s`; the peak holds for `hold_s`; then the
    excess over the base decays with time constant `decay_s` (0 means an immediate drop).
    Each bin holds the rate at its centre.
    """
    n = _check_duration(duration_s)
    base_rate = _check_real("base_rate", base_rate)
    peak_rate = _check_real("peak_rate", peak_rate, lo=base_rate)
    start_s = _check_real("start_s", start_s)
    ramp_s = _check_real("ramp_s", ramp_s)
    hold_s = _check_real("hold_s", hold_s)
    decay_s = _check_real("decay_s", decay_s)

    t = np.arange(n) + 0.5
    hold_end = start_s + ramp_s + hold_s
    up = np.clip((t - start_s) / ramp_s, 0.0, 1.0) if ramp_s > 0 else (t >= start_s) * 1.0
    after = np.maximum(t - hold_end, 0.0)
    down = np.exp(-after / decay_s) if decay_s > 0 else (after == 0) * 1.0
    return _rate_trace(base_rate + (peak_rate - base_rate) * up * down, "flash_crowd")


def sine(duration_s: int, mean_rate: float, amplitude: float, period_s: float = 600.0) -> Trace:
    """Sinusoidal rate ``mean_rate + amplitude * sin(2 pi t / period_s)``.

    Each bin holds the exact integral of the rate over its second, so whole periods average
    to `mean_rate` exactly. `amplitude` must not exceed `mean_rate` (rates stay >= 0).
    """
    n = _check_duration(duration_s)
    mean_rate = _check_real("mean_rate", mean_rate)
    amplitude = _check_real("amplitude", amplitude, hi=mean_rate)
    period_s = _check_real("period_s", period_s, lo_open=True)
    omega = 2 * np.pi / period_s
    edges = np.arange(n + 1, dtype=np.float64)
    integral_sin = -np.diff(np.cos(omega * edges)) / omega
    return _rate_trace(mean_rate + amplitude * integral_sin, "sine")


def square(
    duration_s: int,
    low_rate: float,
    high_rate: float,
    period_s: float = 600.0,
    duty: float = 0.5,
) -> Trace:
    """Square wave: `high_rate` for the first ``duty * period_s`` of each period, else low.

    Bins straddling an edge get the time-weighted average of the two levels.
    """
    n = _check_duration(duration_s)
    low_rate = _check_real("low_rate", low_rate)
    high_rate = _check_real("high_rate", high_rate)
    period_s = _check_real("period_s", period_s, lo_open=True)
    duty = _check_real("duty", duty, hi=1.0)
    high_len = duty * period_s
    edges = np.arange(n + 1, dtype=np.float64)
    # Time spent in the high phase during [0, t]: whole periods plus the current partial one.
    time_high = np.floor(edges / period_s) * high_len + np.minimum(edges % period_s, high_len)
    frac_high = np.diff(time_high)
    return _rate_trace(low_rate + (high_rate - low_rate) * frac_high, "square")


def constant(duration_s: int, rate: float) -> Trace:
    """Constant rate of `rate` requests per second."""
    n = _check_duration(duration_s)
    return _rate_trace(np.full(n, _check_real("rate", rate)), "constant")


GENERATORS: dict[str, Callable[..., Trace]] = {
    "diurnal": diurnal,
    "mmpp": mmpp,
    "flash_crowd": flash_crowd,
    "sine": sine,
    "square": square,
    "constant": constant,
}


def generate(spec: Mapping[str, Any]) -> Trace:
    """Build a trace from a spec such as ``{"generator": "mmpp", "duration_s": 3600, ...}``.

    The remaining keys are the generator's keyword arguments, except an optional ``name``
    that renames the resulting trace. Unknown or missing arguments raise TypeError naming
    them; invalid values raise the generator's ValueError.
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"spec must be a mapping, got {type(spec).__name__}")
    known = ", ".join(sorted(GENERATORS))
    if "generator" not in spec:
        raise ValueError(f"spec needs a 'generator' key, one of: {known}")
    gen_name = spec["generator"]
    if gen_name not in GENERATORS:
        raise ValueError(f"unknown generator {gen_name!r}; known generators: {known}")
    fn = GENERATORS[gen_name]
    kwargs = {k: v for k, v in spec.items() if k not in ("generator", "name")}
    params = inspect.signature(fn).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TypeError(
            f"generator {gen_name!r} got unexpected argument(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(params)}"
        )
    missing = [
        p for p, par in params.items() if par.default is inspect.Parameter.empty and p not in kwargs
    ]
    if missing:
        raise TypeError(f"generator {gen_name!r} is missing argument(s) {', '.join(missing)}")
    trace = fn(**kwargs)
    if "name" in spec:
        trace = replace(trace, name=str(spec["name"]))
    return trace
