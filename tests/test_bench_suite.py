"""The suite benchmark's oracle grid picked on another split's run."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench_suite():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_suite
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return bench_suite


def _points(tmp_path: Path, chosen: list[str]) -> Path:
    frame = pd.DataFrame({"task": [f"t{i}" for i in range(len(chosen))], "oracle": chosen})
    frame.to_csv(tmp_path / "oracle_points.csv", index=False)
    return tmp_path


def test_chosen_specs_are_the_distinct_task_winners_in_order_and_the_safest(bench_suite, tmp_path):
    run = _points(tmp_path, ["oracle:u=0.9", "", "oracle:u=0.8", "oracle:u=0.9"])
    assert bench_suite.chosen_oracle_specs(run) == ["oracle:u=0.9", "oracle:u=0.8",
                                                    bench_suite.SAFEST_ORACLE]
    run = _points(tmp_path, [bench_suite.SAFEST_ORACLE, "oracle:u=0.9"])
    assert bench_suite.chosen_oracle_specs(run) == [bench_suite.SAFEST_ORACLE, "oracle:u=0.9"]


def test_no_winner_or_no_file_is_a_one_line_error(bench_suite, tmp_path):
    with pytest.raises(SystemExit, match="no task of .* has an oracle point"):
        bench_suite.chosen_oracle_specs(_points(tmp_path, ["", ""]))
    with pytest.raises(SystemExit, match="does not exist"):
        bench_suite.chosen_oracle_specs(tmp_path / "absent")
