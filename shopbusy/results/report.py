"""The slice report: one self-contained HTML page per run (inline SVG and CSS, no network),
written by `shopbusy run` and `shopbusy report`, readable from a CI artifact or a notebook.

Everything on it is read back through the documented readers: ML Metadata for the run,
TFMA (load_metrics, load_validation_result) for slices and gates, TFDV for statistics.
"""

import io
import json
import math
import os
from typing import Dict, List, Optional

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow_data_validation as tfdv  # noqa: E402
from markupsafe import Markup  # noqa: E402

from shopbusy.components.anomaly_gate import describe_anomalies  # noqa: E402
from shopbusy.components.modules.features import CONFUSION_SLICE_COLUMNS, SLICE_KEYS  # noqa: E402
from shopbusy.pipeline import config, nodes  # noqa: E402
from shopbusy.results import evaluation, history, metadata, report_data, runs  # noqa: E402

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
COLUMNS = [(metric.key, metric.label) for metric in config.METRICS]
_COUNTS = {metric.key for metric in config.METRICS if metric.count}


def number(value, key: str = "", signed: bool = False) -> str:
    """One precision for every metric on the page: counts whole, rates and scores to four
    decimals (the data section's column statistics keep four significant digits)."""
    if value is None:
        return "n/a"
    sign = "+" if signed else ""
    return f"{value:{sign},.0f}" if key in _COUNTS else f"{value:{sign}.4f}"


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def interval_cell(interval, key: str) -> str:
    """A slice metric's 95 % interval as the slice tables show it, clipped to the metric's
    range: TFMA's jackknife interval is the estimate plus or minus t times its standard error,
    which passes 0 or 1 on a small slice (an accuracy "up to 1.0551"). report.json keeps
    TFMA's own bounds."""
    lower, upper = max(interval[0], 0.0), interval[1] if key in _COUNTS else min(interval[1], 1.0)
    return f"{number(lower, key)} to {number(upper, key)}"


_ENVIRONMENT.filters["number"] = number
_ENVIRONMENT.filters["interval_cell"] = interval_cell
_TEMPLATE = _ENVIRONMENT.get_template("report.html.j2")


def slice_label(key: evaluation.SliceKey) -> str:
    """'Overall', or 'shop_type = 3 × weekday = 5' (bytes values decoded, not b'...')."""
    if not key:
        return "Overall"
    return " × ".join(f"{column} = {value.decode() if isinstance(value, bytes) else value}" for column, value in key)


def _svg(figure) -> Markup:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])


def confusion_svg(title: str, values: Dict[str, float]) -> Markup:
    """A 2x2 heatmap: rows actual (busy, not busy), columns predicted."""
    matrix = [
        [values.get("true_positives", 0), values.get("false_negatives", 0)],
        [values.get("false_positives", 0), values.get("true_negatives", 0)],
    ]
    figure, axes = plt.subplots(figsize=(2.6, 2.3))
    axes.imshow(matrix, cmap="Blues", vmin=0)
    peak = max(max(row) for row in matrix) or 1
    for i in range(2):
        for j in range(2):
            colour = "white" if matrix[i][j] > peak / 2 else "black"
            axes.text(j, i, f"{matrix[i][j]:.0f}", ha="center", va="center", color=colour)
    axes.set_xticks([0, 1], ["busy", "not busy"])
    axes.set_yticks([0, 1], ["busy", "not busy"])
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title, fontsize=10)
    return _svg(figure)


def curves_svg(record: dict) -> Markup:
    """Loss and accuracy per epoch (per iteration for trees), train against validation, the
    restored epoch marked."""
    history = record["history"]
    first = record.get("first_epoch", 1)  # later epochs, after the restarts' warm-up
    epochs = range(first, first + len(history["loss"]))
    figure, panels = plt.subplots(1, 2, figsize=(9, 3.2))
    for axes, metric in zip(panels, ("loss", "accuracy")):
        axes.plot(epochs, history[metric], label="train")
        axes.plot(epochs, history[f"val_{metric}"], label="validation")
        unit = record.get("unit", "epoch")  # a boosting iteration for the trees
        axes.axvline(record["best_epoch"], color="grey", linestyle="--", label=f"best {unit} ({record['best_epoch']})")
        axes.set_xlabel(unit)
        axes.set_title(metric)
        axes.legend(fontsize=8)
    return _svg(figure)


def passing_ranges(verdicts: List[dict]) -> List[tuple]:
    """The runs of consecutive thresholds at which every candidate gate would pass, as
    (first, last) threshold pairs (evaluation.gates_at_thresholds)."""
    ranges, start, previous = [], None, None
    for verdict in verdicts:
        if verdict["all_pass"] and start is None:
            start = verdict["threshold"]
        if not verdict["all_pass"] and start is not None:
            ranges.append((start, previous))
            start = None
        previous = verdict["threshold"]
    if start is not None:
        ranges.append((start, previous))
    return ranges


_RATES = (("precision", "precision"), ("recall", "recall"), ("fall_out", "FPR"), ("miss_rate", "FNR"))


def thresholds_svg(rows: List[dict], ranges: List[tuple]) -> Markup:
    """Precision, recall, FPR and FNR against the decision threshold: the threshold in use
    dashed, the thresholds where every candidate gate would pass shaded."""
    figure, axes = plt.subplots(figsize=(6, 3.2))
    for first, last in ranges:
        axes.axvspan(first, last, color="#e3f2e6", zorder=0, label="every gate would pass")
    for key, label in _RATES:
        points = [(r["threshold"], r[key]) for r in rows if r[key] is not None]
        if points:
            axes.plot(*zip(*points), label=label, linewidth=1.3)
    axes.axvline(config.DECISION_THRESHOLD, color="black", linestyle="--", linewidth=0.9, label=f"threshold in use ({config.DECISION_THRESHOLD:g})")
    axes.set_xlabel("decision threshold (predicted busy above it)")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlim(0, 1)
    handles = dict(zip(*reversed(axes.get_legend_handles_labels())))  # one entry per label
    axes.legend(list(handles.values()), list(handles), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _svg(figure)


def calibration_svg(buckets: List[dict]) -> Markup:
    """The reliability diagram: the observed share of busy rows against the mean predicted
    score, bucket by bucket, with the diagonal a calibrated model follows; the examples per
    bucket below."""
    figure, (curve, counts) = plt.subplots(2, 1, figsize=(4.2, 4.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    curve.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.9, label="calibrated")
    curve.plot([b["mean_prediction"] for b in buckets], [b["observed_rate"] for b in buckets], marker="o", linewidth=1.3, label="model")
    curve.set_ylabel("observed share busy")
    curve.set_ylim(-0.02, 1.02)
    curve.legend(fontsize=7, loc="upper left")
    counts.bar([(b["lower"] + b["upper"]) / 2 for b in buckets], [b["examples"] for b in buckets], width=[b["upper"] - b["lower"] for b in buckets], color="#90a4ae", edgecolor="white")
    counts.set_xlabel("predicted score")
    counts.set_ylabel("examples", fontsize=8)
    counts.set_xlim(0, 1)
    return _svg(figure)


def _threshold_section(evaluation_uri: str, candidate: str, gates: config.Gates) -> Optional[dict]:
    """The overall slice's threshold curves and reliability diagram, where TFMA computed them."""
    plots = evaluation.slice_plots(evaluation_uri).get(candidate)
    if plots is None or not plots.thresholds:
        return None
    verdicts = evaluation.gates_at_thresholds(plots.thresholds, gates)
    ranges = passing_ranges(verdicts)
    in_use = min(plots.thresholds, key=lambda r: abs(r["threshold"] - config.DECISION_THRESHOLD))
    return {
        "thresholds": len(plots.thresholds),
        "ranges": ranges,
        "in_use": in_use,
        "gates": [gate.label for gate in config.GATES if not gate.change],
        "curves": thresholds_svg(plots.thresholds, ranges),
        "calibration": calibration_svg(plots.calibration) if plots.calibration else None,
    }


def _interval_text(interval) -> str:
    return f"{interval[0]:.4f} to {interval[1]:.4f}"


def floor_flag(accuracy: Optional[float], interval, floor: float, examples: int) -> Optional[str]:
    """Below the accuracy floor only when the whole 95 % interval is; 'may be below' when
    the interval straddles it. Without an interval, the point estimate decides, as it does
    for a slice too small to trust, whose jackknife interval means nothing (slice_changes)."""
    if accuracy is None:
        return None
    if interval is None or examples < config.REPORT_MIN_SLICE_EXAMPLES:
        return f"accuracy below the {floor:g} floor" if accuracy < floor else None
    if interval[1] < floor:
        return f"accuracy below the {floor:g} floor (95 % interval {_interval_text(interval)})"
    if interval[0] < floor:
        return f"accuracy may be below the {floor:g} floor (95 % interval {_interval_text(interval)})"
    return None


def _slice_tables(slices, intervals, candidate: str, gates: config.Gates, interval_errors=None) -> List[dict]:
    groups = [("Overall", ())] + [(" × ".join(keys), tuple(keys)) for keys in SLICE_KEYS]
    interval_errors = interval_errors or {}
    # Asked for (else a run without --intervals, or from before them), even where TFMA computed none.
    computed = any(intervals.values()) or bool(interval_errors)
    tables = []
    for title, columns in groups:
        rows = []
        for key in sorted(k for k in slices if tuple(c for c, _ in k) == columns):
            values, undefined = evaluation.defined_values(slices[key], candidate)
            bounds = {name: intervals.get(key, {}).get((name, candidate, False)) for name, _ in COLUMNS}
            count, accuracy = values["example_count"] or 0, values["binary_accuracy"]
            flags = []
            if count < config.REPORT_MIN_SLICE_EXAMPLES:
                flags.append(f"too few examples to trust (< {config.REPORT_MIN_SLICE_EXAMPLES})")
            below = floor_flag(accuracy, bounds["binary_accuracy"], gates.min_accuracy, count)
            if below:
                flags.append(below)
            notes = [  # one per reason, in metric order; not a flag: nothing is wrong with the slice
                f"{', '.join(label for name, label in COLUMNS if undefined.get(name) == reason)} undefined: {reason}"
                for reason in dict.fromkeys(undefined.values())
            ]
            if computed and not any(bounds.values()):
                notes.append(f"no interval: TFMA: {interval_errors.get(key, 'no reason given')}")
            rows.append(
                {"label": slice_label(key), "values": values, "intervals": bounds, "undefined": undefined, "flags": flags, "notes": notes}
            )
        tables.append({"title": title, "rows": rows})
    return tables


def slice_changes(slices, intervals, candidate: str) -> List[dict]:
    """Per slice, the candidate's accuracy minus the baseline's with TFMA's 95 % interval of
    that difference; the slices significantly worse (whole interval below 0) first, then by
    difference. A slice with too few examples to trust is never called worse or better: TFMA's
    jackknife gives a slice of a few examples an interval anyway, as soon as they fall in two
    of its 20 buckets, and it means nothing ([-1, -1] on 2 examples)."""
    name = evaluation.ACCURACY
    changes = []
    for key, metrics in slices.items():
        difference = metrics.get((name, candidate, True))
        if difference is None or math.isnan(difference):
            continue
        interval = intervals.get(key, {}).get((name, candidate, True))
        examples = metrics.get(("example_count", candidate, False))
        if interval is None:
            significance = None
        elif (examples or 0) < config.REPORT_MIN_SLICE_EXAMPLES:
            significance = "too few examples"
        else:
            significance = "worse" if interval[1] < 0 else "better" if interval[0] > 0 else "within noise"
        changes.append(
            {
                "key": key,
                "label": slice_label(key),
                "examples": examples,
                "candidate": metrics.get((name, candidate, False)),
                "baseline": metrics.get((name, evaluation.BASELINE_MODEL, False)),
                "difference": difference,
                "interval": interval,
                "significance": significance,
            }
        )
    return sorted(changes, key=lambda c: (c["significance"] != "worse", c["difference"]))


_OUTCOME_STYLE = {  # how each way a run ended is drawn on the history chart
    history.PUSHED: dict(marker="o", color="#1a7f37", label="pushed"),
    history.ALREADY_SERVED: dict(marker="o", color="#8fd19e", label="blessed, already served"),
    history.NOT_BLESSED: dict(marker="X", color="#c62828", label="not blessed"),
    history.REJECTED: dict(marker="v", color="#ef6c00", label="input rejected"),
    history.BLESSED: dict(marker="D", color="#66bb6a", label="blessed, push not recorded"),
    history.UNFINISHED: dict(marker="s", color="#888888", label="did not finish"),
}


def history_svg(runs_so_far: List[dict]) -> Markup:
    """Accuracy (overall, and each shop type in grey) and the largest drift relative to its
    threshold, run by run up to this one, each run marked by how it ended."""
    labels = [f"span {r['span']}" if r["span"] else f"run {i + 1}" for i, r in enumerate(runs_so_far)]
    figure, (accuracy_axes, drift_axes) = plt.subplots(
        2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    shop_types = sorted({t for r in runs_so_far for t in r["accuracy_by_shop_type"]}, key=_sort_key)
    for shop_type in shop_types:
        points = [(i, r["accuracy_by_shop_type"].get(shop_type)) for i, r in enumerate(runs_so_far)]
        points = [(i, a) for i, a in points if a is not None]
        if points:
            accuracy_axes.plot(*zip(*points), color="#cccccc", linewidth=0.7, zorder=1)
    overall = [(i, r["accuracy"]) for i, r in enumerate(runs_so_far) if r["accuracy"] is not None]
    if overall:
        accuracy_axes.plot(*zip(*overall), color="#1f4e79", linewidth=1.5, zorder=2, label="accuracy (grey: each shop type)")
    for name, style in _OUTCOME_STYLE.items():
        ended = [i for i, r in enumerate(runs_so_far) if r["outcome"] == name]
        placed = [(i, runs_so_far[i]["accuracy"]) for i in ended if runs_so_far[i]["accuracy"] is not None]
        unplaced = [i for i in ended if runs_so_far[i]["accuracy"] is None]  # no Evaluator: on the drift panel
        if placed:
            accuracy_axes.scatter(*zip(*placed), zorder=3, s=36, **style)
        if unplaced:
            drift_axes.scatter(unplaced, [0] * len(unplaced), zorder=3, s=36, **style)
    drifts = [(i, r["largest_drift"]["share_of_threshold"]) for i, r in enumerate(runs_so_far) if r["largest_drift"]]
    if drifts:
        drift_axes.bar(*zip(*drifts), color="#90a4ae", width=0.5, label="largest drift / its threshold")
    drift_axes.axhline(1.0, color="#c62828", linestyle="--", linewidth=0.8, label="drift threshold")
    accuracy_axes.set_ylabel("accuracy (eval split)")
    drift_axes.set_ylabel("drift / threshold")
    drift_axes.set_xticks(list(range(len(labels))), labels, rotation=45 if len(labels) > 10 else 0, fontsize=7)
    legend = {}
    for axes in (accuracy_axes, drift_axes):
        for handle, label in zip(*axes.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    figure.legend(list(legend.values()), list(legend), fontsize=7, loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, 1.0))
    return _svg(figure)


def _load_statistics(statistics_uri: str, split: str):
    return tfdv.load_stats_binary(metadata.statistics_file(statistics_uri, split)).datasets[0]


def _data_section(record: runs.RunRecord) -> dict:
    statistics_uri = record.output_uri(nodes.STATISTICS_GEN, "statistics")
    anomalies_uri = record.output_uri(nodes.EXAMPLE_VALIDATOR, "anomalies")
    section = {"splits": [], "columns": [], "categorical": [], "anomalies": None}
    if statistics_uri:
        for split in record.split_names(nodes.STATISTICS_GEN, "statistics"):
            dataset = _load_statistics(statistics_uri, split)
            section["splits"].append({"name": split, "rows": dataset.num_examples})
            if split != config.TRAIN_SPLIT:
                continue
            for feature in dataset.features:
                if feature.HasField("string_stats"):  # a categorical column (the schema says so)
                    values = feature.string_stats
                    section["categorical"].append(
                        {
                            "name": feature.path.step[0],
                            "unique": values.unique,
                            "top": ", ".join(f"{v.value} ({v.frequency:.0f})" for v in values.top_values[:3]),
                            "missing": dataset.num_examples - values.common_stats.num_non_missing,
                        }
                    )
                    continue
                numbers = feature.num_stats
                section["columns"].append(
                    {
                        "name": feature.path.step[0],
                        "mean": numbers.mean,
                        "std": numbers.std_dev,
                        "min": numbers.min,
                        "max": numbers.max,
                        "missing": dataset.num_examples - numbers.common_stats.num_non_missing,
                    }
                )
    if anomalies_uri:
        section["anomalies"] = describe_anomalies(anomalies_uri, record.split_names(nodes.EXAMPLE_VALIDATOR, "anomalies"))
    return section


def _shares(feature) -> Dict[str, float]:
    """A column's distribution as shares: per value (categorical) or per histogram bucket."""
    if feature.HasField("string_stats"):
        counts = {bucket.label: bucket.sample_count for bucket in feature.string_stats.rank_histogram.buckets}
    else:
        histogram = next((h for h in feature.num_stats.histograms if h.type == h.STANDARD), None)
        counts = {f"{b.low_value:.4g}-{b.high_value:.4g}": b.sample_count for b in (histogram.buckets if histogram else [])}
    total = sum(counts.values()) or 1
    return {label: count / total for label, count in counts.items()}


def _sort_key(label: str):
    head = label.split("-")[0] if label[:1] != "-" else label
    try:
        return (0, float(head))
    except ValueError:
        return (1, label)


def distribution_svg(column: str, previous: Dict[str, float], newest: Dict[str, float], spans) -> Markup:
    """Two bar series, the previous span's shares against the newest's, value by value."""
    labels = sorted(set(previous) | set(newest), key=_sort_key)
    positions = range(len(labels))
    figure, axes = plt.subplots(figsize=(max(4.0, 0.28 * len(labels) + 1.5), 2.6))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], [previous.get(v, 0) for v in labels], width, label=f"span {spans[0]}")
    axes.bar([p + width / 2 for p in positions], [newest.get(v, 0) for v in labels], width, label=f"span {spans[1]}")
    axes.set_xticks(list(positions), labels, rotation=90 if len(labels) > 8 else 0, fontsize=7)
    axes.set_ylabel("share of rows")
    axes.set_title(column, fontsize=10)
    axes.legend(fontsize=8)
    return _svg(figure)


def _drift_section(record: runs.RunRecord) -> Optional[dict]:
    """Per column: distance from the previous span, threshold, exceeded; and the previous
    and newest distributions of the columns that drifted most."""
    measurements = record.drift
    if not measurements:
        return None
    from shopbusy.pipeline.drift import DRIFT_SPLIT

    baseline = record.executions[nodes.DISTRIBUTION_VALIDATOR].inputs["baseline_statistics"][0]
    previous = {f.path.step[0]: f for f in _load_statistics(baseline.uri, DRIFT_SPLIT).features}
    newest = {
        f.path.step[0]: f for f in _load_statistics(record.output_uri(nodes.STATISTICS_GEN, "statistics"), DRIFT_SPLIT).features
    }
    spans = (record.drift_baseline_span, record.span)
    plotted = [m.column for m in measurements[: config.REPORT_DRIFT_PLOTS]]
    return {
        "spans": spans,
        "measurements": measurements,
        "plots": [distribution_svg(c, _shares(previous[c]), _shares(newest[c]), spans) for c in plotted],
    }


def input_size_text(size: Optional[Dict[str, int]], rows: int) -> Optional[str]:
    """'2 files, 431,262 bytes, 5,600 rows': what ExampleGen read (rows from StatisticsGen,
    over every split; left out when it did not run)."""
    if size is None:
        return None
    parts = [f"{size['files']:,} file{'s' if size['files'] != 1 else ''}", f"{size['bytes']:,} bytes"]
    return ", ".join(parts + ([f"{rows:,} rows"] if rows else []))


def _runs_so_far(summaries: Optional[List[dict]], run_id: str) -> List[dict]:
    """The workdir's runs (history.summaries, oldest first) up to and including `run_id`."""
    ids = [r["run_id"] for r in summaries or []]
    return summaries[: ids.index(run_id) + 1] if run_id in ids else []


def render(record: runs.RunRecord, summaries: Optional[List[dict]] = None) -> str:
    """The page for one run, as a string of HTML; `summaries`, the workdir's runs
    (history.summaries), for the history chart."""
    context = {
        "record": record, "gates": [], "tables": [], "heatmaps": [], "baseline": None, "changes": [], "intervals": False,
        "thresholds": None,
        "columns": COLUMNS, "min_examples": config.REPORT_MIN_SLICE_EXAMPLES,
    }  # fmt: skip
    if record.evaluation_uri:
        gates = record.gates
        slices = evaluation.slice_metrics(record.evaluation_uri)
        intervals = evaluation.slice_intervals(record.evaluation_uri)
        interval_errors = evaluation.slice_interval_errors(record.evaluation_uri)
        candidate = evaluation.candidate_name(slices[()])
        context["gates"] = evaluation.gate_results(record.evaluation_uri, gates)
        context["tables"] = _slice_tables(slices, intervals, candidate, gates, interval_errors)
        context["intervals"] = any(intervals.values()) or bool(interval_errors)

        def values(key, model=candidate):
            return {name: slices.get(key, {}).get((name, model, False)) for name, _ in COLUMNS}

        context["thresholds"] = _threshold_section(record.evaluation_uri, candidate, gates)
        heatmap_keys = [()] + sorted(k for k in slices if len(k) == 1 and k[0][0] in CONFUSION_SLICE_COLUMNS)
        context["heatmaps"] = [confusion_svg(slice_label(k), values(k)) for k in heatmap_keys]
        if candidate:  # named 'candidate' only when a baseline was evaluated too
            context["baseline"] = [
                {"key": name, "name": label, "candidate": values(())[name], "baseline": values((), evaluation.BASELINE_MODEL)[name]}
                for name, label in COLUMNS
            ]
            context["changes"] = slice_changes(slices, intervals, candidate)
    training = record.training
    context["training"] = training
    context["drift"] = _drift_section(record)
    context["curves"] = curves_svg(training) if training else None
    context["data"] = _data_section(record)
    context["input_size"] = input_size_text(record.input_size, sum(split["rows"] for split in context["data"]["splits"]))
    runs_so_far = _runs_so_far(summaries, record.run_id)
    context["history"] = history_svg(runs_so_far) if len(runs_so_far) > 1 else None
    context["history_runs"] = len(runs_so_far)
    return _TEMPLATE.render(**context)


def data_json(record: runs.RunRecord) -> str:
    """The page's numbers as the report.json beside it (results/report_data.py)."""
    return json.dumps(report_data.as_data(record), indent=1, allow_nan=False)


def write(record: runs.RunRecord, report_root: str, summaries: Optional[List[dict]] = None) -> str:
    """Writes REPORT_ROOT/<run>/index.html with its numbers in report.json beside it, and
    REPORT_ROOT/latest.html; returns the page's path. `summaries`: see render()."""
    page, data = render(record, summaries), data_json(record)
    path = config.report_page(report_root, record.run_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writes = ((config.report_data_file(report_root, record.run_id), data), (path, page), (config.latest_report_page(report_root), page))
    for target, text in writes:
        with open(target + ".tmp", "w") as f:
            f.write(text)
        os.replace(target + ".tmp", target)
    return path
