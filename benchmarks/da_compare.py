"""Latency strategy vs distributed arithmetic (da4ml) for one finished run (prints JSON).

For the run's QKeras model: the analytic Latency-strategy estimate
(``qtrigger.estimate.latency.estimate_latency_strategy``), the hls4ml DA conversion's kernel cost
(``qtrigger.estimate.da.da_estimate``), the C-simulation mismatches of both conversions against
the exact integer reference on the run's test jets, and the open-source RTL check of
da4ml's standalone Verilog (``qtrigger.firmware.rtl_check.rtl_check``; needs ``pip install '.[rtl]'``).
Every figure keeps its ``verification`` tag: none of them is a Vivado/Vitis result.

Usage: python benchmarks/da_compare.py [RUN_DIR] [--jets N] [--no-rtl] [--rounding half_up|half_even]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from qtrigger.errors import QTriggerError  # noqa: E402


def compare(run_dir: Path, jets: int | None = None, rtl: bool = True, rounding: str = "half_up") -> dict:
    """Both conversions of ``run_dir``'s model side by side."""
    from qtrigger import firmware
    from qtrigger.config import load_config
    from qtrigger.emulate.network import extract_network
    from qtrigger.estimate.da import da_estimate
    from qtrigger.estimate.latency import estimate_latency_strategy
    from qtrigger.firmware.rtl_check import rtl_check
    from qtrigger.models.build import load_model

    config = load_config(run_dir / "config.resolved.yaml", check_files=False)
    model = load_model(run_dir / "model_qat.h5")
    network = extract_network(model)
    x = np.load(run_dir / "test_jets.npz")["inputs"]
    if jets is not None:
        x = x[:jets]
    exact = network.forward_codes(x)
    clock, part = config.hls.clock_period_ns, config.hls.part
    result = {"run": str(run_dir), "jets": int(len(x)), "clock_period_ns": clock, "part": part,
              "network": [list(np.asarray(s.weight_codes).shape) for s in network.stages]}
    with tempfile.TemporaryDirectory(prefix="qtrigger-da-compare-") as tmp:
        tmp = Path(tmp)
        for strategy in ("latency", "distributed_arithmetic"):
            hls_cfg = config.hls.model_copy(update={"strategy": strategy, "reuse_factor": 1})
            start = time.perf_counter()
            project = firmware.convert(model, network, hls_cfg, tmp / strategy, config.name or "run")
            seconds = time.perf_counter() - start
            csim = firmware.compare_codes(firmware.csim_predict_codes(project, network, x), exact, network.output_type)
            entry = {"csim": csim.summary(), "convert_and_compile_seconds": round(seconds, 1)}
            if strategy == "latency":
                entry["estimate"] = estimate_latency_strategy(network, clock, 1, part).to_dict()
            else:
                entry["estimate"] = da_estimate(project, network, clock, part=part)
            result[strategy] = entry
        if rtl:
            try:
                result["rtl_check"] = rtl_check(network, x, tmp / "rtl", clock_period_ns=clock, part=part,
                                                rounding=rounding)
                result["rtl_check"]["directory"] = None
            except QTriggerError as err:
                result["rtl_check"] = {"skipped": str(err)}
    lat, dae = result["latency"]["estimate"], result["distributed_arithmetic"]["estimate"]
    result["side_by_side"] = {
        "lut": {"latency_estimate": lat["lut"], "da_kernel_cost_plus_activations": dae["lut"],
                "da_kernel_cost_only": dae["kernel_cost"]},
        "dsp": {"latency_estimate": lat["dsp"], "da": dae["dsp"]},
        "latency_cycles": {"latency_estimate": lat["latency_cycles"], "da_estimate": dae["latency_cycles"]},
        "csim_mismatched_jets": {"latency": result["latency"]["csim"]["mismatched_jets"],
                                 "distributed_arithmetic": result["distributed_arithmetic"]["csim"]["mismatched_jets"]},
        "note": "all 'estimate' figures are models (analytic-latency-v1 and da4ml's kernel cost), not HLS reports; "
                "the RTL check's da4ml_verilog numbers describe da4ml's own Verilog, a different design.",
    }
    if "sets" in result.get("rtl_check", {}):
        check = result["rtl_check"]
        result["side_by_side"]["rtl_check"] = {
            "exact": check["exact"], "rounding": check["rounding"],
            "mismatches": {name: s["mismatches"] for name, s in check["sets"].items()},
            "qkeras_differing_jets": {name: s["qkeras_differences"]["jets"] for name, s in check["sets"].items()},
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="runs/l1_bjet_ultralight", help="run directory")
    parser.add_argument("--jets", type=int, default=None, help="first N test jets (default: all)")
    parser.add_argument("--no-rtl", action="store_true", help="skip the Verilator RTL check")
    parser.add_argument("--rounding", choices=("half_up", "half_even"), default="half_up")
    args = parser.parse_args(argv)
    try:
        result = compare(Path(args.run), args.jets, not args.no_rtl, args.rounding)
    except QTriggerError as err:
        print(f"da_compare: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
