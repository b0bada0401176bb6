"""Which metrics exist for a slice, read from its confusion counts (the report's "—")."""

import math

from shopbusy.pipeline import config
from shopbusy.results import evaluation, report_data

METRIC = {metric.key: metric for metric in config.METRICS}


def _counts(tp, fn, fp, tn, **values):
    return {"true_positives": tp, "false_negatives": fn, "false_positives": fp, "true_negatives": tn, **values}


def _undefined(values):
    return {key: reason for key, metric in METRIC.items() if (reason := evaluation.undefined_reason(metric, values))}


def test_a_slice_with_both_classes_and_both_predictions_has_every_metric():
    assert _undefined(_counts(40, 10, 5, 45, auc=0.9, precision=0.89)) == {}


def test_a_slice_without_busy_examples_has_no_auc_recall_or_miss_rate():
    # What TFMA stores there: AUC 0, recall 0 -- numbers that are not measurements. The
    # precision is one (7 predicted busy, none right); with none predicted busy it is not.
    busy = "no busy example in the slice"
    undefined = _undefined(_counts(0, 0, 7, 93, auc=0.0, recall=0.0, precision=0.0))
    assert undefined == {"auc": busy, "recall": busy, "miss_rate": busy}
    undefined = _undefined(_counts(0, 0, 0, 100, auc=0.0, recall=0.0, precision=0.0))
    assert undefined == {"auc": busy, "recall": busy, "miss_rate": busy, "precision": "no example predicted busy"}


def test_a_slice_without_quiet_examples_has_no_auc_or_fpr_but_a_precision():
    undefined = _undefined(_counts(80, 20, 0, 0, auc=0.0, precision=1.0))
    assert undefined == {"auc": "no not-busy example in the slice", "fall_out": "no not-busy example in the slice"}


def test_nan_is_undefined_and_missing_counts_do_not_make_a_metric_undefined():
    assert _undefined({"precision": math.nan}) == {"precision": "not a number"}
    assert _undefined({"auc": 0.7}) == {}


def test_the_json_never_holds_nan():
    assert report_data._json_safe({"a": [math.nan, 1.0, {"b": math.inf}], "c": "x"}) == {"a": [None, 1.0, {"b": None}], "c": "x"}


def test_a_slice_is_below_the_floor_only_when_its_whole_interval_is():
    from shopbusy.results import report

    assert report.floor_flag(0.80, (0.74, 0.84), 0.85, 100).startswith("accuracy below the 0.85 floor (95 % interval 0.7400 to 0.8400)")
    assert report.floor_flag(0.80, (0.73, 0.87), 0.85, 100).startswith("accuracy may be below the 0.85 floor")
    assert report.floor_flag(0.88, (0.82, 0.94), 0.85, 100).startswith("accuracy may be below")  # straddles, whatever the estimate
    assert report.floor_flag(0.90, (0.86, 0.94), 0.85, 100) is None
    assert report.floor_flag(0.80, None, 0.85, 100) == "accuracy below the 0.85 floor"  # a run without intervals
    assert report.floor_flag(None, None, 0.85, 100) is None
    # Under REPORT_MIN_SLICE_EXAMPLES the interval is ignored (TFMA gave a 2-example slice
    # [-1, -1]): the point estimate decides, beside the slice's "too few examples" flag.
    few = config.REPORT_MIN_SLICE_EXAMPLES - 1
    assert report.floor_flag(0.5, (-1.0, -1.0), 0.85, 2) == "accuracy below the 0.85 floor"
    assert report.floor_flag(0.9, (0.2, 0.95), 0.85, few) is None
    assert report.floor_flag(0.9, (0.2, 0.95), 0.85, few + 1).startswith("accuracy may be below")


def test_a_slice_is_significantly_worse_only_with_its_whole_interval_below_zero_and_enough_examples():
    from shopbusy.results import report

    def metrics(examples, difference):
        return {("example_count", "c", False): examples, (evaluation.ACCURACY, "c", True): difference}

    enough = config.REPORT_MIN_SLICE_EXAMPLES
    slices = {
        (): metrics(400, -0.16),
        (("shop_type", 3),): metrics(enough, -0.05),
        (("shop_type", 4),): metrics(enough, -0.30),
        (("shop_type", 5),): metrics(enough, 0.20),
        (("shop_type", 2), ("weekday", 1)): metrics(2, -1.0),  # TFMA's jackknife on 2 examples: [-1, -1]
        (("shop_type", 6),): metrics(enough, -0.10),  # no interval computed
        (("shop_type", 7),): metrics(enough, math.nan),
    }
    intervals = {
        (): {(evaluation.ACCURACY, "c", True): (-0.21, -0.12)},
        (("shop_type", 3),): {(evaluation.ACCURACY, "c", True): (-0.15, 0.05)},
        (("shop_type", 4),): {(evaluation.ACCURACY, "c", True): (-0.50, -0.10)},
        (("shop_type", 5),): {(evaluation.ACCURACY, "c", True): (0.05, 0.35)},
        (("shop_type", 2), ("weekday", 1)): {(evaluation.ACCURACY, "c", True): (-1.0, -1.0)},
    }
    changes = report.slice_changes(slices, intervals, "c")
    assert [(c["label"], c["significance"]) for c in changes] == [
        ("shop_type = 4", "worse"),  # the worse first, the largest fall first
        ("Overall", "worse"),
        ("shop_type = 2 × weekday = 1", "too few examples"),
        ("shop_type = 6", None),
        ("shop_type = 3", "within noise"),
        ("shop_type = 5", "better"),
    ]


def test_a_slice_tfma_computed_no_interval_for_carries_tfmas_reason_even_when_no_slice_has_one():
    """At a million rows TFMA's jackknife came back with no interval for any slice, each with
    its reason (bench/notes.md, "Intervals with worker processes"): the page must still say
    intervals were asked for, and why each slice has none."""
    from shopbusy.results import report

    slices = {(): {("example_count", "", False): 400_000.0, (evaluation.ACCURACY, "", False): 0.9}}
    reason = "CI not computed because only 16 samples were non-empty. Expected 20."
    [overall] = report._slice_tables(slices, {(): {}}, "", config.Gates(), {(): reason})[0]["rows"]
    assert overall["notes"] == [f"no interval: TFMA: {reason}"]
    # A run that asked for none: no note at all.
    [overall] = report._slice_tables(slices, {(): {}}, "", config.Gates())[0]["rows"]
    assert overall["notes"] == []


def test_the_slice_tables_clip_an_interval_to_its_metrics_range():
    from shopbusy.results import report

    # TFMA's jackknife bounds on slices of about 20 examples, from a run of the e2e test.
    assert report.interval_cell((0.5108, 1.0551), "binary_accuracy") == "0.5108 to 1.0000"
    assert report.interval_cell((-0.0866, 0.4506), "fall_out") == "0.0000 to 0.4506"
    assert report.interval_cell((-2.2, 7.4), "false_negatives") == "0 to 7"
    assert report.interval_cell((150.2, 208.4), "true_positives") == "150 to 208"


def test_a_gate_says_whether_its_whole_interval_clears_the_bound():
    def gate(comparison, bound, interval):
        return evaluation.GateResult("g", 0.5, comparison, bound, None, True, interval=interval)

    assert gate(">=", 0.85, (0.86, 0.90)).interval_clears is True
    assert gate(">=", 0.85, (0.84, 0.90)).interval_clears is False
    assert gate("<=", 0.20, (0.10, 0.19)).interval_clears is True
    assert gate("<=", 0.20, (0.10, 0.21)).interval_clears is False
    assert gate("<=", 0.20, None).interval_clears is None


def test_rates_at_a_threshold_come_from_its_counts_and_are_undefined_without_a_denominator():
    row = evaluation.threshold_row(0.3, tp=40, fp=10, tn=45, fn=5)
    assert row["binary_accuracy"] == 0.85 and row["precision"] == 0.8 and row["recall"] == 40 / 45
    assert row["fall_out"] == 10 / 55 and row["miss_rate"] == 5 / 45
    everything_busy = evaluation.threshold_row(0.0, tp=45, fp=55, tn=0, fn=0)
    assert everything_busy["fall_out"] == 1.0 and everything_busy["miss_rate"] == 0.0
    nothing_busy = evaluation.threshold_row(1.0, tp=0, fp=0, tn=55, fn=45)
    assert nothing_busy["precision"] is None and nothing_busy["recall"] == 0.0


def test_the_thresholds_where_every_candidate_gate_passes_are_named_as_ranges():
    from shopbusy.results import report

    gates = config.Gates(min_accuracy=0.8, max_fpr=0.2, max_fnr=0.2)
    rows = [
        evaluation.threshold_row(0.1, tp=50, fp=40, tn=10, fn=0),  # FPR 0.8
        evaluation.threshold_row(0.2, tp=48, fp=8, tn=42, fn=2),  # passes
        evaluation.threshold_row(0.3, tp=46, fp=5, tn=45, fn=4),  # passes
        evaluation.threshold_row(0.4, tp=30, fp=2, tn=48, fn=20),  # FNR 0.4
        evaluation.threshold_row(0.5, tp=45, fp=4, tn=46, fn=5),  # passes
    ]
    verdicts = evaluation.gates_at_thresholds(rows, gates)
    assert [v["all_pass"] for v in verdicts] == [False, True, True, False, True]
    assert set(verdicts[0]["passes"]) == {g.label for g in config.GATES if not g.change}
    assert verdicts[3]["passes"] == {"accuracy": False, "false-positive rate": True, "false-negative rate": False}
    assert report.passing_ranges(verdicts) == [(0.2, 0.3), (0.5, 0.5)]
    assert report.passing_ranges(verdicts[:1]) == []


def test_the_input_line_counts_files_bytes_and_rows_from_tfxs_fingerprint():
    from shopbusy.results import report, runs

    fingerprint = (  # two splits' lines, as tfx/utils/io_utils.generate_fingerprint writes them
        "split:single_split,num_files:2,total_bytes:431262,xor_checksum:17,sum_checksum:99\n"
        "split:other,num_files:1,total_bytes:1000,xor_checksum:1,sum_checksum:2"
    )
    size = runs.fingerprint_size(fingerprint)
    assert size == {"files": 3, "bytes": 432262}
    assert report.input_size_text(size, 5600) == "3 files, 432,262 bytes, 5,600 rows"
    assert report.input_size_text({"files": 1, "bytes": 10}, 0) == "1 file, 10 bytes"
    assert report.input_size_text(None, 5600) is None


def test_every_metric_on_the_page_has_one_precision_counts_whole():
    from shopbusy.results import report

    assert report.number(0.912345, "binary_accuracy") == "0.9123"
    assert report.number(1234.0, "example_count") == "1,234" and report.number(7.0, "true_positives") == "7"
    assert report.number(-0.01234, "auc", signed=True) == "-0.0123" and report.number(3.0, "false_positives", signed=True) == "+3"
    assert report.number(None, "auc") == "n/a"
