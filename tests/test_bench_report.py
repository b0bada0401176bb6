"""The benchmark page's Evaluator section and targets, on results whose numbers are known."""

import pytest

from bench import report
from shopbusy.pipeline import nodes


def _scale_run(rows: int, evaluator: float, transform: float, reference: float) -> dict:
    return {
        "wall_seconds": 100.0, "peak_rss_mb": 1000, "test_accuracy": 0.9, "busy": False, "foreign_cpu_share": 0.0,
        "components": {nodes.EVALUATOR: {"seconds": evaluator, "rows_per_second": 1}, nodes.TRANSFORM: {"seconds": transform, "rows_per_second": 1}},
        "evaluator_reference": {"rows": rows, "slices": 170, "seconds": reference, "score_seconds": reference / 2, "metrics_seconds": reference / 2},
    }  # fmt: skip


def test_the_fixed_and_per_row_costs_are_a_least_squares_line():
    fixed, per_row = report.linear_cost([(100_000, 30.0), (1_000_000, 120.0), (10_000, 21.0)])
    assert fixed == pytest.approx(20.0) and per_row == pytest.approx(1e-4)
    assert report.linear_cost([(1000, 5.0)]) is None


def test_a_scale_only_benchmark_judges_the_evaluator_per_row_against_its_reference():
    results = {
        "datasets": {},
        "plan": {"scale_rows": [10_000, 100_000]},
        "scale": {
            "10000": _scale_run(4_000, evaluator=24.0, transform=10.0, reference=0.4),  # 20 s + 1 ms/row
            "100000": _scale_run(40_000, evaluator=60.0, transform=30.0, reference=4.0),  # reference 0.1 ms/row
        },
    }
    [target] = report.targets(results)
    assert target["target"].startswith("the Evaluator's cost per eval row <= 10 x")
    assert target["value"] == pytest.approx(10.0) and target["met"]
    sections = "\n".join(report._scale_sections(results) + report._evaluator_sections(results))
    assert "## The Evaluator against its real work" in sections
    assert "| 4,000 rows |" not in sections and "| 10,000 rows | 4,000 | 170 | 24.0 |" in sections
    assert "the Evaluator 20.0 s + 1000.0 µs per eval row" in sections and "costs 10 x the reference" in sections


def test_the_evaluator_section_needs_no_scale_runs():
    fresh = _scale_run(400, evaluator=20.0, transform=10.0, reference=0.5)
    page = "\n".join(report._evaluator_sections({"datasets": {"odd-types": {"shopbusy": [fresh]}}, "scale": {}}))
    assert "| odd-types data, fresh run | 400 | 170 | 20.0 |" in page and "| 40 x |" in page
    assert "Fitted over the scale runs" not in page  # one run: no line to fit


def test_a_quality_only_benchmark_does_not_count_the_million_rows_as_missed():
    planned = {"datasets": {}, "plan": {"scale_rows": [1_000_000]}, "scale": {}}
    assert report.targets(dict(planned, scenarios=["quality"])) == []
    # A full benchmark stopped before its million-row run says so, as before.
    [stopped] = report.targets(dict(planned, scenarios=["quality", "scale"]))
    assert not stopped["met"] and stopped["measured"].startswith("not measured")
