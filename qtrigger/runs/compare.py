"""``qtrigger compare RUN``: float vs QAT vs post-training fixed point vs C-simulation.

All rows use the same test jets (``runs/<run>/test_jets.npz``) and the same working
point definition: the threshold keeping ``trigger.background_efficiency`` of background
jets, set on each model's own scores. Post-training quantization (PTQ, what the seed
document did) converts the float twin with one uniform ``ap_fixed<W,I>`` everywhere.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np

from qtrigger import firmware
from qtrigger.emulate.network import extract_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware import adapter
from qtrigger.levels.scores import trigger_score
from qtrigger.metrics import roc_auc, threshold_for_background_efficiency, working_point
from qtrigger.models.build import count_parameters
from qtrigger.plotting import style
from qtrigger.runs.finished import FinishedRun
from qtrigger.runs.report import write_json

MIN_WIDTH, MAX_WIDTH = 2, 1024  # PTQ ap_fixed<W, I> total widths compare accepts


def ptq_outputs(float_model, x: np.ndarray, width: int, integer: int, hls_cfg, directory: Path) -> np.ndarray:
    """C-simulation outputs of the float model converted at uniform ``ap_fixed<width, integer>``."""

    precision = f"fixed<{width},{integer}>"
    config = adapter.config_from_keras_model(float_model, granularity="model", backend=hls_cfg.backend,
                                             default_precision=precision)
    config["Model"]["Strategy"] = "Latency"
    hls_model = adapter.convert_from_keras_model(
        float_model, hls_config=config, output_dir=str(directory), project_name="ptq", backend=hls_cfg.backend,
        io_type=hls_cfg.io_type, part=hls_cfg.part, clock_period=hls_cfg.clock_period_ns)
    hls_model.compile()
    return np.asarray(hls_model.predict(np.ascontiguousarray(x, np.float64)), np.float64).reshape(len(x), -1)


def integer_bits_for(float_model, x: np.ndarray) -> int:
    """Integer bits (with sign) so that the largest activation of the float model fits."""
    import tf_keras as keras

    probe = keras.Model(float_model.inputs, [layer.output for layer in float_model.layers[1:]])
    largest = max(float(np.max(np.abs(out))) for out in probe.predict(x.astype(np.float32), batch_size=8192, verbose=0))
    largest = max(largest, float(np.max(np.abs(x))))
    return max(1, math.ceil(math.log2(largest + 1e-12)) + 1 + 1)  # +1 sign, +1 headroom


def check_widths(widths: list[int] | None) -> None:
    """PTQ widths are whole bit counts from 2 (sign and one bit) to 1024 (``ap_fixed``'s limit), else one line."""
    bad = [w for w in widths or [] if not isinstance(w, int) or not MIN_WIDTH <= w <= MAX_WIDTH]
    if bad:
        raise QTriggerError(f"--widths {' '.join(map(str, bad))}: each PTQ width must be a whole number of bits "
                            f"from {MIN_WIDTH} to {MAX_WIDTH}")


def _row(name, signal, scores, target_bkg, bits, nonzero, mismatched=None) -> dict:
    threshold = threshold_for_background_efficiency(signal, scores, target_bkg)
    point = working_point(signal, scores, threshold)
    return {"model": name, "auc": roc_auc(signal, scores), "signal_efficiency": point.signal_efficiency,
            "signal_efficiency_err": point.signal_efficiency_err, "background_efficiency": point.background_efficiency,
            "mismatched_events": mismatched, "bits_per_weight": bits, "nonzero_weights": nonzero}


def compare_run(run_dir: str | Path, widths: list[int] | None = None, write: bool = True) -> dict:
    """Build the comparison table for a finished run; optionally write it into the run."""

    run_dir = Path(run_dir)
    check_widths(widths)
    finished = FinishedRun.load(run_dir)  # refuses missing, unfinished or corrupt runs in one line
    for needed in ("model_float.h5", "test_jets.npz"):
        if not (run_dir / needed).is_file():
            raise QTriggerError(f"{run_dir}: {needed} missing (compare needs a finished run with training.float_twin: true)")
    config = finished.config
    jets = finished.test_jets()
    x, signal = jets["inputs"], jets["signal"].astype(bool)
    target = config.trigger.background_efficiency
    qat_model, float_model = finished.load_model("qat"), finished.load_model("float")
    network = extract_network(qat_model)
    exact_codes = network.forward_codes(x)
    _, nonzero_qat = count_parameters(qat_model)
    _, nonzero_float = count_parameters(float_model)
    qat_bits = max(config.quantization.layer(i).weight_bits for i in range(len(config.model.dense_widths) + 1))  # widest layer
    rows = [
        _row("float twin", signal, trigger_score(config, float_model.predict(x.astype(np.float32), batch_size=8192, verbose=0)),
             target, 32, nonzero_float),
        _row("QAT (QKeras, exact)", signal, trigger_score(config, exact_codes * network.output_type.lsb), target, qat_bits, nonzero_qat),
    ]
    integer = integer_bits_for(float_model, x)
    widths = widths or [6, 8, 10, 12, 14, 16, 18]
    with tempfile.TemporaryDirectory(prefix="qtrigger-compare-") as tmp:
        project = firmware.convert(qat_model, network, config.hls, Path(tmp) / "qat", config.name)
        csim_codes = firmware.csim_predict_codes(project, network, x)
        mismatched = firmware.compare_codes(csim_codes, exact_codes, network.output_type).mismatched_jets
        rows.append(_row("C-simulation of QAT", signal, trigger_score(config, csim_codes * network.output_type.lsb),
                         target, qat_bits, nonzero_qat, mismatched))
        ptq_rows = []
        for width in sorted(set(widths)):
            use_integer = min(integer, width - 1)
            outputs = ptq_outputs(float_model, x, width, use_integer, config.hls, Path(tmp) / f"ptq_{width}")
            row = _row(f"PTQ ap_fixed<{width},{use_integer}>", signal, trigger_score(config, outputs), target, width, nonzero_float)
            ptq_rows.append(row | {"width": width, "integer": use_integer})
        outputs = ptq_outputs(float_model, x, 16, 6, config.hls, Path(tmp) / "ptq_16_6")
        seed_row = _row("PTQ ap_fixed<16,6> (seed document's choice)", signal, trigger_score(config, outputs), target, 16, nonzero_float)
    best = max(ptq_rows, key=lambda r: (r["auc"] or 0.0, -r["width"]))
    rows += [dict(best, model=best["model"] + " (best PTQ)"), seed_row]
    result = {"rows": rows, "ptq_sweep": ptq_rows, "ptq_integer_bits": integer, "working_point_background_efficiency": target,
              "test_jets": int(len(x))}
    if write:
        _write_into_run(run_dir, result)
    return result


def comparison_table(result: dict) -> str:
    """Markdown table of the comparison rows."""
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}"

    lines = ["| Model | AUC | Signal eff. (%) | Mismatching events | Bits/weight | Non-zero weights |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        auc = "n/a" if r["auc"] is None else f"{r['auc']:.4f}"
        mism = "—" if r["mismatched_events"] is None else str(r["mismatched_events"])
        lines.append(f"| {r['model']} | {auc} | {pct(r['signal_efficiency'])} ± {pct(r['signal_efficiency_err'])} | {mism} "
                     f"| {r['bits_per_weight']} | {r['nonzero_weights']} |")
    sweep = ", ".join(f"{r['width']} bits: {r['auc']:.4f}" for r in result["ptq_sweep"] if r["auc"] is not None)
    lines.append(f"\nPTQ sweep (uniform ap_fixed<W,{result['ptq_integer_bits']}>), AUC: {sweep}")
    return "\n".join(lines)


def _write_into_run(run_dir: Path, result: dict) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["compare"] = result
    write_json(run_dir / "metrics.json", metrics)
    plot_comparison(run_dir / "plots" / "compare.png", result)
    report = (run_dir / "report.md").read_text().split("\n## Float vs QAT vs PTQ vs C-simulation")[0]
    bkg = 100 * result["working_point_background_efficiency"]
    report += (f"\n## Float vs QAT vs PTQ vs C-simulation\n\nSame {result['test_jets']} test jets; signal efficiency at "
               f"{bkg:.2f} % background efficiency per jet, threshold set on each model's scores. PTQ converts the float "
               f"twin with one uniform type.\n\n{comparison_table(result)}\n\n![compare](plots/compare.png)\n")
    (run_dir / "report.md").write_text(report)


def plot_comparison(path: Path, result: dict) -> None:
    """AUC of PTQ versus bit width, with the float, QAT and C-simulation levels."""

    plt = style()
    fig, ax = plt.subplots(figsize=(8, 6))
    sweep = result["ptq_sweep"]
    ax.plot([r["width"] for r in sweep], [r["auc"] for r in sweep], "o-", label="PTQ, uniform ap_fixed<W,I>")
    for row, line_style in zip(result["rows"][:3], ["k--", "r-", "b:"]):
        if row["auc"] is not None:
            ax.axhline(row["auc"], color=line_style[0], ls=line_style[1:], label=row["model"])
    ax.set_xlabel("PTQ total bits W")
    ax.set_ylabel("Test AUC")
    ax.legend(fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
