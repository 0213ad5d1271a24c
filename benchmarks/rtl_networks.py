"""Estimates vs yosys cell counts of da4ml's Verilog on several small trained networks (prints JSON).

For each scan point (weight bits x hidden widths x pruning sparsity) a QKeras network is
trained briefly on a slice of the default sample (resources depend on the weights, not on
the accuracy) and compared:

- ``analytic_latency``: ``qtrigger.estimate.latency.estimate_latency_strategy`` (hls4ml Latency
  strategy; a different artefact, given for the ordering only),
- ``analytic_da``: ``qtrigger.estimate.da.da_estimate`` (hls4ml DA conversion: da4ml kernel cost +
  the activation LUT model + its adder-depth latency),
- ``da4ml_rtl``: da4ml's own estimate of its Verilog (LUT-equivalents, register bits, stages),
- ``yosys``: yosys cells of that Verilog (``qtrigger.rtl_synth``; no place-and-route),
- ``measured``: latency from the Verilator read-offset search (``qtrigger.rtl_latency``).

Ratios are estimate / yosys LUT (FF for register bits). Nothing is tuned to move them.

Usage: python benchmarks/rtl_networks.py [--epochs 2] [--max-events 20000] [--only 0,3] [--out FILE]
       python benchmarks/rtl_networks.py --collect LINES...   (summary of per-point JSON lines from stderr)
Each point's JSON goes to stderr as one line when it is done, so points can run in separate processes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# 3 weight widths at one shape, two shapes, two sparsities: 8 points.
POINTS = [
    {"weight_bits": 4, "hidden": [32, 16], "sparsity": 0.5},
    {"weight_bits": 6, "hidden": [32, 16], "sparsity": 0.5},
    {"weight_bits": 8, "hidden": [32, 16], "sparsity": 0.5},
    {"weight_bits": 4, "hidden": [16, 8], "sparsity": 0.5},
    {"weight_bits": 6, "hidden": [16, 8], "sparsity": 0.5},
    {"weight_bits": 8, "hidden": [16, 8], "sparsity": 0.5},
    {"weight_bits": 6, "hidden": [32, 16], "sparsity": 0.0},
    {"weight_bits": 6, "hidden": [16, 8], "sparsity": 0.0},
]


def point_config(base, point: dict, epochs: int, max_events: int):
    """The default run config with one scan point's quantization, shape and sparsity."""
    q = base.quantization.model_copy(update={"weight_bits": point["weight_bits"], "bias_bits": point["weight_bits"]})
    pruning = base.pruning.model_copy(update={"enabled": point["sparsity"] > 0,
                                              "target_sparsity": point["sparsity"] or base.pruning.target_sparsity})
    return base.model_copy(update={
        "data": base.data.model_copy(update={"max_events": max_events}),
        "model": base.model.model_copy(update={"hidden": list(point["hidden"])}),
        "quantization": q, "pruning": pruning,
        "training": base.training.model_copy(update={"epochs": epochs, "threads": 1}),
        "hls": base.hls.model_copy(update={"strategy": "distributed_arithmetic"}),
    })


def ratio(estimate, measured):
    return None if not measured or estimate is None else round(float(estimate) / float(measured), 3)


def measure_point(config, prepared, tmp: Path, jets: int) -> dict:
    """Train one point and put every estimate next to the yosys counts and the measured latency."""
    from qtrigger import firmware
    from qtrigger.emulate.network import extract_network
    from qtrigger.estimate import latency as hardware
    from qtrigger.estimate.da import da_estimate
    from qtrigger.firmware.latency import measure_latency
    from qtrigger.firmware.rtl import verilog_summary
    from qtrigger.firmware.rtl_check import rtl_stimulus
    from qtrigger.firmware.rtl_stage import TOP, write_rtl_project
    from qtrigger.firmware.synth import require_yosys, synthesize
    from qtrigger.runs.pipeline import fit as _fit

    start = time.perf_counter()
    qat = _fit(config, prepared, 1, True, None)
    network = extract_network(qat.model)
    x_test = prepared.inputs[prepared.split.test][:jets]
    hls = config.hls
    lat_est = hardware.estimate_latency_strategy(network, hls.clock_period_ns, 1, hls.part)
    project = firmware.convert(qat.model, network, hls, tmp / "hls", "bench", compile_model=False)
    da_est = da_estimate(project, network, hls.clock_period_ns, part=hls.part)
    comb, raw, pipe, cutoff = write_rtl_project(network, tmp / "rtl", hls.clock_period_ns, hls.part)
    sets = rtl_stimulus(network, x_test, raw, n_ties=500, n_overrange=300)
    latency = measure_latency(tmp / "rtl", TOP, pipe, network, sets, hls.clock_period_ns, nproc=1)
    # flattened top only: per-stage rows are reported for the default network (qtrigger hls rtl)
    synth = synthesize(tmp / "rtl", TOP, tool=require_yosys(), per_stage=False).to_json()
    da4ml = verilog_summary(comb, cutoff, hls.clock_period_ns)
    weights = np.concatenate([np.asarray(s.weight_codes).ravel() for s in network.stages])
    return {
        "nonzero_weights": int(np.count_nonzero(weights)),
        "weights": int(weights.size),
        "analytic_latency": {"lut": lat_est.lut, "ff": lat_est.ff, "dsp": lat_est.dsp,
                             "latency_cycles": lat_est.latency_cycles},
        "analytic_da": {"lut": da_est["lut"], "kernel_cost": da_est["kernel_cost"],
                        "latency_cycles": da_est["latency_cycles"]},
        "da4ml_rtl": {"lut": da4ml["cost_lut_estimate"], "ff": da4ml["register_bits"],
                      "latency_cycles": da4ml["latency_cycles"]},
        "yosys": {k: synth[k] for k in ("lut", "lut_by_size", "ff", "carry", "muxf", "dsp", "bram", "inv")},
        "measured": {"latency_cycles": latency.latency_cycles, "ii": latency.ii,
                     "mismatches_vs_model": sum(latency.mismatches_vs_model.values()), "rows": latency.rows},
        "ratio_to_yosys_lut": {"analytic_latency": ratio(lat_est.lut, synth["lut"]),
                               "analytic_da": ratio(da_est["lut"], synth["lut"]),
                               "da4ml_rtl": ratio(da4ml["cost_lut_estimate"], synth["lut"])},
        "ratio_to_yosys_ff": {"da4ml_rtl": ratio(da4ml["register_bits"], synth["ff"])},
        "tool": synth["version"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def summarize(rows: list[dict]) -> dict:
    """Mean, min, max of each ratio over the points."""
    out = {}
    for family in ("ratio_to_yosys_lut", "ratio_to_yosys_ff"):
        for name in rows[0][family]:
            values = [r[family][name] for r in rows if r[family][name] is not None]
            out[f"{family}.{name}"] = {"mean": round(float(np.mean(values)), 3), "min": min(values), "max": max(values),
                                       "n": len(values)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "l1_bjet_ultralight.yaml"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-events", type=int, default=20000)
    parser.add_argument("--jets", type=int, default=2000, help="test jets streamed through the RTL")
    parser.add_argument("--only", default=None, help="comma-separated point indices (default: all)")
    parser.add_argument("--collect", nargs="+", default=None, metavar="FILE",
                        help="no training: summarise the per-point JSON lines in these files")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.collect:
        rows = [json.loads(line) for f in args.collect for line in Path(f).read_text().splitlines()
                if line.startswith('{"point"')]
        unique = {json.dumps(r["point"], sort_keys=True): r for r in reversed(rows)}  # a point run twice: first kept
        rows = sorted(unique.values(), key=lambda r: POINTS.index(r["point"]))
        return emit({"points": rows, "summary": summarize(rows)}, args.out)

    from qtrigger.config import load_config
    from qtrigger.models.train import configure_tensorflow
    from qtrigger.runs.pipeline import prepare_data

    base = load_config(args.config)
    configure_tensorflow(base.training.seed, 1)
    rows = []
    prepared = None
    indices = [int(i) for i in args.only.split(",")] if args.only else range(len(POINTS))
    for point in [POINTS[i] for i in indices]:
        config = point_config(base, point, args.epochs, args.max_events)
        prepared = prepared or prepare_data(config)
        with tempfile.TemporaryDirectory(prefix="qtrigger-rtl-bench-") as tmp:
            rows.append({"point": point, **measure_point(config, prepared, Path(tmp), args.jets)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return emit({"points": rows, "summary": summarize(rows), "epochs": args.epochs, "max_events": args.max_events}, args.out)


def emit(result: dict, out: str | None) -> int:
    """Print (and write) the result with its note."""
    result["note"] = ("yosys cells of da4ml's Verilog (out of context, no place-and-route); analytic_latency is the "
                      "hls4ml Latency-strategy estimate, a different design, listed for ordering only.")
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
