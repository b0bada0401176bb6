"""The slice report: one self-contained HTML page per run (inline SVG and CSS, no network),
written by `shopbusy run` and `shopbusy report`, readable from a CI artifact or a notebook.

Everything on it is read back through the documented readers: ML Metadata for the run,
TFMA (load_metrics, load_validation_result) for slices and gates, TFDV for statistics.
"""

import io
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
from shopbusy.results import evaluation, metadata, runs  # noqa: E402

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
COLUMNS = [(metric.key, metric.label) for metric in config.METRICS]
_TEMPLATE = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
).get_template("report.html.j2")


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
    """Loss and accuracy per epoch, train against validation, the restored epoch marked."""
    history = record["history"]
    first = record.get("first_epoch", 1)  # later epochs, after the restarts' warm-up
    epochs = range(first, first + len(history["loss"]))
    figure, panels = plt.subplots(1, 2, figsize=(9, 3.2))
    for axes, metric in zip(panels, ("loss", "accuracy")):
        axes.plot(epochs, history[metric], label="train")
        axes.plot(epochs, history[f"val_{metric}"], label="validation")
        axes.axvline(record["best_epoch"], color="grey", linestyle="--", label=f"best epoch ({record['best_epoch']})")
        axes.set_xlabel("epoch")
        axes.set_title(metric)
        axes.legend(fontsize=8)
    return _svg(figure)


def _slice_tables(slices, candidate: str, gates: config.Gates) -> List[dict]:
    groups = [("Overall", ())] + [(" × ".join(keys), tuple(keys)) for keys in SLICE_KEYS]
    tables = []
    for title, columns in groups:
        rows = []
        for key in sorted(k for k in slices if tuple(c for c, _ in k) == columns):
            values = {name: slices[key].get((name, candidate, False)) for name, _ in COLUMNS}
            count, accuracy = values["example_count"] or 0, values["binary_accuracy"]
            flags = []
            if count < config.REPORT_MIN_SLICE_EXAMPLES:
                flags.append(f"too few examples to trust (< {config.REPORT_MIN_SLICE_EXAMPLES})")
            if accuracy is not None and accuracy < gates.min_accuracy:
                flags.append(f"accuracy below the {gates.min_accuracy:g} floor")
            rows.append({"label": slice_label(key), "values": values, "flags": flags})
        tables.append({"title": title, "rows": rows})
    return tables


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


def render(record: runs.RunRecord) -> str:
    """The page for one run, as a string of HTML."""
    context = {"record": record, "gates": [], "tables": [], "heatmaps": [], "baseline": None, "columns": COLUMNS}
    if record.evaluation_uri:
        gates = record.gates
        slices = evaluation.slice_metrics(record.evaluation_uri)
        candidate = evaluation.candidate_name(slices[()])
        context["gates"] = evaluation.gate_results(record.evaluation_uri, gates)
        context["tables"] = _slice_tables(slices, candidate, gates)

        def values(key, model=candidate):
            return {name: slices.get(key, {}).get((name, model, False)) for name, _ in COLUMNS}

        heatmap_keys = [()] + sorted(k for k in slices if len(k) == 1 and k[0][0] in CONFUSION_SLICE_COLUMNS)
        context["heatmaps"] = [confusion_svg(slice_label(k), values(k)) for k in heatmap_keys]
        if candidate:  # named 'candidate' only when a baseline was evaluated too
            context["baseline"] = [
                {"name": label, "candidate": values(())[name], "baseline": values((), evaluation.BASELINE_MODEL)[name]}
                for name, label in COLUMNS
            ]
    training = record.training
    context["training"] = training
    context["drift"] = _drift_section(record)
    context["curves"] = curves_svg(training) if training else None
    context["data"] = _data_section(record)
    return _TEMPLATE.render(**context)


def write(record: runs.RunRecord, report_root: str) -> str:
    """Writes REPORT_ROOT/<run>/index.html and REPORT_ROOT/latest.html; returns the former."""
    page = render(record)
    path = config.report_page(report_root, record.run_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for target in (path, config.latest_report_page(report_root)):
        with open(target + ".tmp", "w") as f:
            f.write(page)
        os.replace(target + ".tmp", target)
    return path
