"""Tests for serflow_env.traces: Trace validation, loaders, generators and sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serflow_env.arrivals import SHIPPED_TRACE_DIR, resolve_trace
from serflow_env.traces import (
    GENERATORS,
    Trace,
    constant,
    diurnal,
    flash_crowd,
    generate,
    load_azure_trace,
    load_libra_trace,
    load_trace,
    mmpp,
    save_libra_trace,
    sine,
    square,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TRACES = REPO_ROOT.parent / "shared" / "traces"
AZURE_HEADER = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(map(str, range(1, 1441)))


def write(tmp_path: Path, text: str, name: str = "trace.txt") -> Path:
    """Write `text` verbatim (no newline translation) and return the path."""
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def azure_row(fn: str, counts: np.ndarray) -> str:
    return f"owner,app,{fn},http," + ",".join(str(int(c)) for c in counts)


# --------------------------------------------------------------------------------------
# Trace
# --------------------------------------------------------------------------------------


def test_trace_properties_and_read_only() -> None:
    source = np.array([1.0, 3.0, 2.0])
    tr = Trace(source, 2.0, "exact", "t")
    assert tr.duration_s == 6.0
    assert tr.mean_rate == pytest.approx(1.0)
    assert tr.peak_rate == pytest.approx(1.5)
    assert tr.values.dtype == np.float64
    with pytest.raises(ValueError):
        tr.values[0] = 5.0
    source[0] = 100.0  # the trace keeps its own copy
    assert tr.values[0] == 1.0
    assert tr == Trace([1, 3, 2], 2.0, "exact", "t")
    assert tr != Trace([1, 3, 3], 2.0, "exact", "t")
    assert hash(tr) == hash(Trace([1, 3, 2], 2.0, "exact", "t"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": [[1.0, 2.0]]}, r"values must be 1-D"),
        ({"values": []}, r"at least one bin"),
        ({"values": [1.0, np.nan]}, r"values\[1\] = nan is not finite"),
        ({"values": [1.0, 2.0, -1.0]}, r"values\[2\] = -1.0 is negative"),
        ({"values": [1.0, 2.5]}, r"values\[1\] = 2.5 is not an integer"),
        ({"resolution_s": 0.0}, r"resolution_s must be a finite number > 0, got 0.0"),
        ({"resolution_s": float("inf")}, r"resolution_s"),
        ({"arrival_process": "uniform"}, r"arrival_process must be one of"),
    ],
)
def test_trace_validation(kwargs: dict, match: str) -> None:
    args = {"values": [1.0, 2.0], "resolution_s": 1.0, "arrival_process": "exact", **kwargs}
    with pytest.raises(ValueError, match=match):
        Trace(**args)


def test_poisson_trace_allows_fractional_counts() -> None:
    assert Trace([0.5, 1.25], 1.0, "poisson").mean_rate == pytest.approx(0.875)


def test_rate_per_second_coarse_and_fine() -> None:
    coarse = Trace([60.0, 120.0], 60.0, "poisson")
    rate = coarse.rate_per_second()
    assert rate.shape == (120,)
    np.testing.assert_allclose(rate[:60], 1.0)
    np.testing.assert_allclose(rate[60:], 2.0)
    fine = Trace([1.0, 3.0, 2.0, 2.0, 5.0], 0.5, "exact")  # last second half covered
    np.testing.assert_allclose(fine.rate_per_second(), [4.0, 4.0, 10.0])
    with pytest.raises(ValueError, match=r"whole number of seconds or 1/n"):
        Trace([1.0], 1.5, "poisson").rate_per_second()


def test_sample_counts_poisson_is_integer_with_right_mean() -> None:
    tr = constant(20_000, 50.0)
    s = tr.sample_counts(np.random.default_rng(0))
    assert s.arrival_process == "exact" and s.resolution_s == 1.0
    assert len(s) == 20_000
    np.testing.assert_array_equal(s.values, np.round(s.values))
    assert s.mean_rate == pytest.approx(50.0, rel=0.01)
    assert s == tr.sample_counts(np.random.default_rng(0))
    assert s != tr.sample_counts(np.random.default_rng(1))


def test_sample_counts_exact() -> None:
    one = Trace([3.0, 4.0], 1.0, "exact")
    assert one.sample_counts(np.random.default_rng(0)) is one
    fine = Trace([1.0, 2.0, 3.0, 4.0], 0.5, "exact")
    np.testing.assert_array_equal(fine.sample_counts(np.random.default_rng(0)).values, [3, 7])
    coarse = Trace([600.0, 0.0, 7.0], 60.0, "exact")
    s = coarse.sample_counts(np.random.default_rng(0))
    assert len(s) == 180
    np.testing.assert_array_equal(s.values.reshape(3, 60).sum(axis=1), [600, 0, 7])
    assert s.values[:60].std() > 0  # spread over the minute, not all at its start


def test_sample_counts_azure_style_minute_bins() -> None:
    tr = Trace(np.full(30, 600.0), 60.0, "poisson")
    s = tr.sample_counts(np.random.default_rng(3))
    assert len(s) == 1800
    assert s.mean_rate == pytest.approx(10.0, rel=0.03)


def test_window_wraps_around() -> None:
    tr = Trace(np.arange(10.0), 1.0, "exact", "w")
    np.testing.assert_array_equal(tr.window(7, 5).values, [7, 8, 9, 0, 1])
    np.testing.assert_array_equal(tr.window(-2, 3).values, [8, 9, 0])
    np.testing.assert_array_equal(tr.window(3, 25).values, np.arange(3, 28) % 10)
    assert tr.window(7, 5).name == "w"
    minutes = Trace([1.0, 2.0, 3.0], 60.0, "poisson")
    np.testing.assert_array_equal(minutes.window(120, 120).values, [3, 1])
    with pytest.raises(ValueError, match=r"start_s = 30 is not a multiple of resolution_s"):
        minutes.window(30, 60)
    with pytest.raises(ValueError, match=r"duration_s must be > 0"):
        tr.window(0, 0)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.integers(0, 1000), min_size=1, max_size=50),
    start=st.integers(-200, 200),
    duration=st.integers(1, 120),
)
def test_window_matches_modular_indexing(values: list[int], start: int, duration: int) -> None:
    tr = Trace(values, 1.0, "exact")
    expected = np.take(values, np.arange(start, start + duration), mode="wrap")
    np.testing.assert_array_equal(tr.window(start, duration).values, expected)


# --------------------------------------------------------------------------------------
# LIBRA loader
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "3\n0\n12\n",
        "3\n0\n12",  # no final newline
        "  3 \n\t0\n12   \n\n\n",  # surrounding whitespace, trailing blank lines
        "3.0\n0\n12.0\n",  # integral floats
        "3\r\n0\r\n12\r\n",  # Windows line endings
    ],
)
def test_load_libra_tolerant(tmp_path: Path, text: str) -> None:
    tr = load_libra_trace(write(tmp_path, text))
    np.testing.assert_array_equal(tr.values, [3, 0, 12])
    assert tr.resolution_s == 1.0
    assert tr.arrival_process == "exact"
    assert tr.name == "trace"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("1\n2\nabc\n4\n", 3, "'abc'"),
        ("1\n-2\n3\n", 2, "negative"),
        ("1\n2\n3.5\n", 3, "not an integer"),
        ("1\nnan\n", 2, "not finite"),
        ("inf\n1\n", 1, "not finite"),
        ("1\n\n2\n", 2, "empty line"),
        ("1\n2 3\n", 2, "'2 3'"),
    ],
)
def test_load_libra_errors_name_the_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_libra_trace(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ")
    assert fragment in message


def test_load_libra_empty_and_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        load_libra_trace(write(tmp_path, " \n\n"))
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_libra_trace(missing)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_trace(missing)


def test_save_libra_round_trip(tmp_path: Path) -> None:
    tr = Trace([0.0, 5.0, 123456.0], 1.0, "exact", "x")
    path = tmp_path / "out.txt"
    save_libra_trace(tr, path)
    assert path.read_text() == "0\n5\n123456\n"
    assert load_libra_trace(path, name="x") == tr
    with pytest.raises(ValueError, match="sample_counts"):
        save_libra_trace(constant(3, 1.0), path)
    with pytest.raises(ValueError, match="sample_counts"):
        save_libra_trace(Trace([1.0], 60.0, "exact"), path)


def test_load_libra_is_fast_on_long_files(tmp_path: Path) -> None:
    counts = np.random.default_rng(0).integers(0, 2000, size=45_000)
    path = write(tmp_path, "\n".join(map(str, counts)) + "\n")
    tr = load_trace(path)
    np.testing.assert_array_equal(tr.values, counts)


@pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason="../shared/traces not available")
@pytest.mark.parametrize(
    ("filename", "length", "mean"),
    [
        ("wits_logs.txt", 45_000, 142.9357),
        ("sin_logs.txt", 10_000, 156.5467),
        ("square_load.txt", 1_112, 16.1871),
    ],
)
def test_real_libra_traces(filename: str, length: int, mean: float) -> None:
    tr = load_trace(SHARED_TRACES / filename)
    assert len(tr) == length
    assert tr.mean_rate == pytest.approx(mean, abs=1e-3)
    assert tr.arrival_process == "exact"
    assert tr.name == Path(filename).stem


def test_shipped_synthetic_traces_load() -> None:
    files = sorted(SHIPPED_TRACE_DIR.glob("*.txt"))
    assert len(files) >= 5
    readme = (SHIPPED_TRACE_DIR / "README.md").read_text()
    for path in files:
        tr = load_libra_trace(path)
        assert tr.arrival_process == "exact" and len(tr) >= 3600
        assert path.name in readme
        assert f"{tr.mean_rate:.1f}" in readme


def test_shipped_traces_are_found_by_name_from_any_directory(tmp_path, monkeypatch) -> None:
    """A scenario naming ``traces/NAME.txt`` works outside the repository (package data)."""
    monkeypatch.chdir(tmp_path)
    expected = load_libra_trace(SHIPPED_TRACE_DIR / "sine_1h.txt").values
    for spec in ("traces/sine_1h.txt", "sine_1h.txt"):
        np.testing.assert_array_equal(resolve_trace(spec).values, expected)
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "sine_1h.txt").write_text("1\n2\n3\n")
    assert len(resolve_trace("traces/sine_1h.txt")) == 3  # a local file comes first
    with pytest.raises(FileNotFoundError, match="trace file not found: traces/nope.txt"):
        resolve_trace("traces/nope.txt")
    with pytest.raises(FileNotFoundError, match="other/sine_1h.txt"):
        resolve_trace("other/sine_1h.txt")


# --------------------------------------------------------------------------------------
# Azure loader
# --------------------------------------------------------------------------------------


@pytest.fixture
def azure_csv(tmp_path: Path) -> tuple[Path, np.ndarray]:
    counts = np.random.default_rng(0).integers(0, 50, size=(3, 1440))
    lines = [AZURE_HEADER] + [azure_row(f"fn{i}", counts[i]) for i in range(3)]
    return write(tmp_path, "\n".join(lines) + "\n", "azure.csv"), counts


def test_load_azure_sum_index_and_function(azure_csv: tuple[Path, np.ndarray]) -> None:
    path, counts = azure_csv
    total = load_trace(path)  # auto-detects the Azure header
    assert total.resolution_s == 60.0 and total.arrival_process == "poisson"
    assert total.duration_s == 86_400.0
    np.testing.assert_array_equal(total.values, counts.sum(axis=0))
    np.testing.assert_array_equal(load_azure_trace(path, function=1).values, counts[1])
    by_hash = load_trace(path, function="fn2", name="f2")
    np.testing.assert_array_equal(by_hash.values, counts[2])
    assert by_hash.name == "f2"
    assert by_hash.mean_rate == pytest.approx(counts[2].sum() / 86_400)


def test_load_azure_selection_errors(azure_csv: tuple[Path, np.ndarray]) -> None:
    path, _ = azure_csv
    with pytest.raises(ValueError, match=r"HashFunction == 'nope' among the 3 rows"):
        load_azure_trace(path, function="nope")
    with pytest.raises(ValueError, match=r"row index 3 is out of range.*3 rows"):
        load_azure_trace(path, function=3)


def test_load_azure_bad_header_and_values(tmp_path: Path) -> None:
    header = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(map(str, range(1, 1431)))
    short = write(tmp_path, header + "\n" + azure_row("f", np.ones(1430)) + "\n", "short.csv")
    with pytest.raises(ValueError, match=r"missing 10 minute column\(s\) '1431'..'1440'"):
        load_azure_trace(short)
    row = azure_row("f", np.ones(1440)).split(",")
    row[4 + 9] = "-3"  # minute 10
    bad = write(tmp_path, AZURE_HEADER + "\n" + ",".join(row) + "\n", "bad.csv")
    with pytest.raises(ValueError, match=r"row 0 \(line 2\), minute column '10' holds '-3'"):
        load_azure_trace(bad)
    with pytest.raises(ValueError, match="no rows"):
        load_azure_trace(write(tmp_path, AZURE_HEADER + "\n", "empty.csv"))


# --------------------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------------------

SPECS = {
    "diurnal": {"duration_s": 7200, "mean_rate": 100.0, "period_s": 7200.0, "seed": 3},
    "mmpp": {"duration_s": 3600, "rates": [40, 150, 400], "mean_sojourn_s": 60.0, "seed": 3},
    "flash_crowd": {"duration_s": 3600, "base_rate": 50, "peak_rate": 300, "start_s": 600},
    "sine": {"duration_s": 3600, "mean_rate": 80, "amplitude": 40},
    "square": {"duration_s": 3600, "low_rate": 10, "high_rate": 90},
    "constant": {"duration_s": 3600, "rate": 7.5},
}


def test_every_generator_has_a_spec() -> None:
    assert set(GENERATORS) == set(SPECS)


@pytest.mark.parametrize("gen", sorted(SPECS))
def test_generator_contract_and_determinism(gen: str) -> None:
    tr = generate({"generator": gen, **SPECS[gen]})
    assert tr.arrival_process == "poisson" and tr.resolution_s == 1.0
    assert len(tr) == SPECS[gen]["duration_s"]
    assert np.isfinite(tr.values).all() and (tr.values >= 0).all()
    assert tr.name == gen
    assert tr == generate({"generator": gen, **SPECS[gen]})
    assert generate({"generator": gen, "name": "renamed", **SPECS[gen]}).name == "renamed"


def test_seeded_generators_depend_on_seed() -> None:
    assert diurnal(3600, 10.0, seed=1) != diurnal(3600, 10.0, seed=2)
    assert mmpp(3600, [1, 10], 30.0, seed=1) != mmpp(3600, [1, 10], 30.0, seed=2)


def test_diurnal_mean_and_shape() -> None:
    day = diurnal(86_400, 100.0, peak_to_mean=3.0, phase_s=0.0, noise=0.0)
    assert day.mean_rate == pytest.approx(100.0, rel=1e-9)
    assert day.peak_rate / day.mean_rate == pytest.approx(3.0, rel=1e-3)
    assert int(np.argmax(day.values)) == pytest.approx(43_200, abs=2)  # peak mid-period
    assert day.values.min() > 0
    noisy = diurnal(86_400, 100.0, noise=0.3, seed=5)
    assert noisy.mean_rate == pytest.approx(100.0, rel=1e-9)
    ratio = noisy.values / diurnal(86_400, 100.0, noise=0.0).values
    assert 0.1 < ratio.std() / ratio.mean() < 0.6
    assert np.abs(np.diff(np.log(ratio))).max() < 0.05  # the noise is slow


def test_mmpp_mean_and_states() -> None:
    rates = [40.0, 150.0, 400.0]
    sojourn = [100.0, 60.0, 24.0]
    tr = mmpp(400_000, rates, sojourn, seed=7)
    expected = np.dot(rates, sojourn) / np.sum(sojourn)
    assert tr.mean_rate == pytest.approx(expected, rel=0.04)
    for r in rates:  # every state is visited for whole seconds
        assert np.isclose(tr.values, r).any()
    assert tr.values.min() >= 40.0 and tr.peak_rate <= 400.0
    single = mmpp(100, [5.0], 10.0)
    np.testing.assert_allclose(single.values, 5.0)


def test_flash_crowd_shape() -> None:
    tr = flash_crowd(3600, 50.0, 300.0, start_s=600, ramp_s=30, hold_s=60, decay_s=300)
    v = tr.values
    assert tr.peak_rate == pytest.approx(300.0)
    np.testing.assert_allclose(v[:600], 50.0)
    np.testing.assert_allclose(v[630:690], 300.0)
    assert np.all(np.diff(v[600:630]) > 0)  # ramp
    assert np.all(np.diff(v[690:]) < 0)  # decay
    assert v[690 + 300] - 50 == pytest.approx(250 * np.exp(-300.5 / 300), rel=1e-6)
    assert v[-1] == pytest.approx(50.0 + 250 * np.exp(-(3599.5 - 690) / 300), rel=1e-9)
    step = flash_crowd(100, 1.0, 2.0, start_s=10, ramp_s=0, hold_s=5, decay_s=0)
    np.testing.assert_array_equal(np.flatnonzero(step.values == 2.0), np.arange(10, 15))


def test_sine_and_square_and_constant() -> None:
    s = sine(6000, 100.0, 100.0, period_s=600)
    assert s.mean_rate == pytest.approx(100.0, rel=1e-9)
    assert s.peak_rate == pytest.approx(200.0, rel=1e-3)
    assert 0 <= s.values.min() < 0.01
    assert int(np.argmax(s.values[:600])) in (149, 150)
    q = square(3000, 10.0, 90.0, period_s=600, duty=0.25)
    np.testing.assert_array_equal(q.values[:150], 90.0)
    np.testing.assert_array_equal(q.values[150:600], 10.0)
    np.testing.assert_array_equal(q.values[600:750], 90.0)
    assert q.mean_rate == pytest.approx(30.0)
    edges = square(4, 0.0, 10.0, period_s=2.5, duty=0.5)  # edges inside seconds
    np.testing.assert_allclose(edges.values, [10.0, 2.5, 5.0, 7.5])
    assert constant(10, 3.0).mean_rate == 3.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: constant(0, 1.0), r"duration_s must be a whole number of seconds >= 1, got 0"),
        (lambda: constant(10.5, 1.0), r"duration_s .* got 10.5"),
        (lambda: constant(10, -1.0), r"rate must be a finite number in \[0, inf\), got -1.0"),
        (lambda: diurnal(10, 1.0, peak_to_mean=0.5), r"peak_to_mean must be .* \[1, 100\]"),
        (lambda: diurnal(10, 1.0, period_s=0), r"period_s must be .* \(0, inf\)"),
        (lambda: diurnal(10, 1.0, seed=-1), r"seed must be a non-negative integer"),
        (lambda: mmpp(10, [], 1.0), r"rates must be a non-empty sequence"),
        (lambda: mmpp(10, [1.0, -2.0], 1.0), r"rates\[1\] must be"),
        (lambda: mmpp(10, [1.0, 2.0], [1.0]), r"one entry per rate \(2\)"),
        (lambda: mmpp(10, [1.0, 2.0], 0.0), r"mean_sojourn_s must be"),
        (lambda: mmpp(10**9, [1.0, 2.0], 1.0), r"mean_sojourn_s is too short"),
        (lambda: flash_crowd(10, 5.0, 1.0, 0.0), r"peak_rate must be .* \[5, inf\)"),
        (lambda: flash_crowd(10, 1.0, 5.0, -1.0), r"start_s must be"),
        (lambda: sine(10, 10.0, 20.0), r"amplitude must be .* \[0, 10\], got 20.0"),
        (lambda: square(10, 1.0, 2.0, duty=1.5), r"duty must be .* \[0, 1\]"),
    ],
)
def test_generator_validation(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_generate_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown generator 'poisson'.*constant, diurnal"):
        generate({"generator": "poisson"})
    with pytest.raises(ValueError, match="'generator' key"):
        generate({"rate": 1.0})
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) bogus, rat"):
        generate({"generator": "constant", "duration_s": 5, "rat": 1.0, "bogus": 2})
    with pytest.raises(TypeError, match=r"missing argument\(s\) rate"):
        generate({"generator": "constant", "duration_s": 5})
    with pytest.raises(ValueError, match="rate must be"):
        generate({"generator": "constant", "duration_s": 5, "rate": float("nan")})
