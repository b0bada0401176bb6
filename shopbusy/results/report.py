"""The slice report: one self-contained HTML page per run (inline SVG and CSS, no network),
written by `shopbusy run` and `shopbusy report`, readable from a CI artifact or a notebook.

Everything on it is read back through the documented readers: ML Metadata for the run,
TFMA (load_metrics, load_validation_result) for slices and gates, TFDV for statistics.
"""

import io
import json
import os
from typing import Dict, List, Optional

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow_data_validation as tfdv  # noqa: E402
from markupsafe import Markup  # noqa: E402

from shopbusy.components.anomaly_gate import describe_anomalies  # noqa: E402
from shopbusy.components.modules.features import HISTORY_FILE, LABEL_KEY, SLICE_KEYS  # noqa: E402
from shopbusy.pipeline import config  # noqa: E402
from shopbusy.results import evaluation, runs  # noqa: E402

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


def _data_section(record: runs.RunRecord) -> dict:
    statistics_uri = record.output_uri("StatisticsGen", "statistics")
    anomalies_uri = record.output_uri("ExampleValidator", "anomalies")
    section = {"splits": [], "columns": [], "anomalies": None}
    if statistics_uri:
        for split in record.split_names("StatisticsGen", "statistics"):
            stats = tfdv.load_stats_binary(os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb"))
            dataset = stats.datasets[0]
            section["splits"].append({"name": split, "rows": dataset.num_examples})
            if split == config.TRAIN_SPLIT:
                for feature in dataset.features:
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
        section["anomalies"] = describe_anomalies(anomalies_uri, record.split_names("ExampleValidator", "anomalies"))
    return section


def _training_record(record: runs.RunRecord) -> Optional[dict]:
    run_dir = record.output_uri("Trainer", "model_run")
    path = os.path.join(run_dir, HISTORY_FILE) if run_dir else None
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


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

        heatmap_keys = [()] + sorted(k for k in slices if len(k) == 1 and k[0][0] in (LABEL_KEY, "shop_type"))
        context["heatmaps"] = [confusion_svg(slice_label(k), values(k)) for k in heatmap_keys]
        if candidate:  # named 'candidate' only when a baseline was evaluated too
            context["baseline"] = [
                {"name": label, "candidate": values(())[name], "baseline": values((), evaluation.BASELINE_MODEL)[name]}
                for name, label in COLUMNS
            ]
    training = _training_record(record)
    context["training"] = training
    context["curves"] = curves_svg(training) if training else None
    context["data"] = _data_section(record)
    return _TEMPLATE.render(**context)


def write(record: runs.RunRecord, report_root: str) -> str:
    """Writes REPORT_ROOT/<run>/index.html and REPORT_ROOT/latest.html; returns the former."""
    page = render(record)
    path = config.report_page(report_root, record.run_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for target in (path, os.path.join(report_root, "latest.html")):
        with open(target + ".tmp", "w") as f:
            f.write(page)
        os.replace(target + ".tmp", target)
    return path
