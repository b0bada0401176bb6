"""A run's verdict, gates and overall figures in the shapes KFP's and Vertex AI's run pages
draw (components/slice_report.py says where each shape comes from): a Markdown summary, the
scalar metrics table, the confusion matrix and the ROC points."""

from typing import Dict, List, Union

from shopbusy.pipeline import config
from shopbusy.results import evaluation, report, runs

CLASS_NAMES = ("not busy", "busy")  # label 0, label 1: the rows and columns of the matrix


def _overall(record: runs.RunRecord):
    slices = evaluation.slice_metrics(record.evaluation_uri)
    candidate = evaluation.candidate_name(slices[()])
    values, _ = evaluation.defined_values(slices[()], candidate)
    return values, candidate


def _gate_value(gate: evaluation.GateResult) -> str:
    return "n/a" if gate.value is None else report.number(gate.value, signed=gate.is_change)


def _gate_result(gate: evaluation.GateResult) -> str:
    return "passed" if gate.passed else "failed"


def _spans(record: runs.RunRecord) -> str:
    trained = ", ".join(map(str, record.training_spans)) or "-"
    baseline = record.drift_baseline_span
    return f"span {record.span}; trained on spans {trained}; drift checked against " + (
        f"span {baseline}" if baseline is not None else "no earlier span"
    )


def verdict_markdown(record: runs.RunRecord, gates: List[evaluation.GateResult]) -> str:
    """The verdict, the spans, the exported candidate and each gate (evaluation.gate_results)
    with its value and bound."""
    lines = [f"## {record.verdict}", "", _spans(record) + "."]
    drifted = [m.describe() for m in record.drift if m.exceeded]
    if drifted:
        lines.append("Drifted: " + "; ".join(drifted) + ".")
    chosen = record.describe_candidates()
    if chosen:
        lines.append(f"Exported: {chosen}.")
    lines += ["", "| gate | value | bound | result |", "|---|---|---|---|"]
    for gate in gates:
        lines.append(f"| {gate.name} | {_gate_value(gate)} | {gate.comparison} {gate.bound:g} | {_gate_result(gate)} |")
    lines += ["", "The full slice report is the *Slice report* artifact of this task."]
    return "\n".join(lines) + "\n"


def scalars(record: runs.RunRecord, gates: List[evaluation.GateResult]) -> Dict[str, Union[str, float]]:
    """The metrics table: the verdict, the spans, each overall metric of the candidate (those
    defined for it) and each gate as 'value comparison bound: result'."""
    values, _ = _overall(record)
    table: Dict[str, Union[str, float]] = {"verdict": record.verdict, "spans": _spans(record)}
    for metric in config.METRICS:
        if values.get(metric.key) is not None:
            table[metric.label] = float(values[metric.key])
    for gate in gates:
        table[f"gate: {gate.name}"] = f"{_gate_value(gate)} {gate.comparison} {gate.bound:g}: {_gate_result(gate)}"
    return table


def classification(record: runs.RunRecord) -> Dict[str, object]:
    """`confusionMatrix` at the decision threshold (rows the true class, columns the
    predicted one) and `confidenceMetrics`, one ROC point per threshold of TFMA's plot."""
    values, candidate = _overall(record)
    counts = {k: float(values.get(k) or 0) for k in ("true_negatives", "false_positives", "false_negatives", "true_positives")}
    matrix = {
        "annotationSpecs": [{"displayName": name} for name in CLASS_NAMES],
        "rows": [
            {"row": [counts["true_negatives"], counts["false_positives"]]},
            {"row": [counts["false_negatives"], counts["true_positives"]]},
        ],
    }
    result: Dict[str, object] = {"confusionMatrix": matrix}
    plots = evaluation.slice_plots(record.evaluation_uri).get(candidate)
    points: List[dict] = [
        {"confidenceThreshold": row["threshold"], "recall": row["recall"], "falsePositiveRate": row["fall_out"]}
        for row in (plots.thresholds if plots else [])
        if row["recall"] is not None and row["fall_out"] is not None  # both classes present
    ]
    if points:
        result["confidenceMetrics"] = points
    return result
