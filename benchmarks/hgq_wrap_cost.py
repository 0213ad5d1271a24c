"""What HGQ2's wrap mode would save on a trained HGQ2 run's network: da4ml cost and (``--yosys``) yosys cells.

Usage: python benchmarks/hgq_wrap_cost.py RUN [--yosys]
Prints, per hidden input quantizer, the elements whose wrap the reference cannot exclude over the saturated input
range (``qtrigger.emulate.hgq.reachable_wraps``), then the network's RTL cost built three ways: as qtrigger builds
it (every quantizer saturates; a wrap excluded by the proof gives the same logic), every hidden quantizer wrapping
unchecked (not exact on every input: what qtrigger refuses), and the inputs wrapping too. JSON on stdout.
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import qtrigger.firmware.rtl as rtl
from qtrigger.emulate.hgq import reachable_wraps
from qtrigger.emulate.sets import extract_any_network
from qtrigger.firmware.rtl_stage import TOP, write_rtl_project
from qtrigger.firmware.synth import synthesize
from qtrigger.runs.finished import FinishedRun


def _quantize_with(mode_of):
    """``rtl.quantize_elements`` with the overflow mode ``mode_of(layer name)`` instead of saturation."""

    def quantize(values, quantizer, where):
        frac, lo, hi = (np.broadcast_to(a, (1, *values.shape)).reshape(values.shape)
                        for a in (quantizer.frac, quantizer.lo, quantizer.hi))
        span = np.round(np.log2(hi + 1.0)).astype(np.int64)
        return values.quantize((lo < 0).astype(np.int64), span - frac, frac, overflow_mode=mode_of(where),
                               round_mode=quantizer.rounding)

    return quantize


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--yosys", action="store_true", help="synthesize each variant (about 1-2 min each)")
    args = parser.parse_args()
    run = FinishedRun.load(args.run)
    network = extract_any_network(run.load_model("qat"))
    first = network.stages[0].name
    for stage in network.stages[1:]:
        stage.inputs.wrap = True  # ask the proof about every hidden quantizer
    reachable = reachable_wraps(network.stages)
    for stage in network.stages:
        stage.inputs.wrap = False
    variants = {"saturating (as built)": lambda where: "SAT",
                "hidden layers wrap unchecked": lambda where: "SAT" if where == first else "WRAP",
                "inputs and hidden layers wrap unchecked": lambda where: "WRAP"}
    original, out = rtl.quantize_elements, {"run": args.run, "reachable_wraps": reachable, "variants": {}}
    clock, part = float(run.config.hls.clock_period_ns), str(run.config.hls.part)
    try:
        for name, mode_of in variants.items():
            rtl.quantize_elements = _quantize_with(mode_of)
            with tempfile.TemporaryDirectory(prefix="qtrigger-wrap-") as tmp:
                comb, _, _, _ = write_rtl_project(network, Path(tmp), clock, part)
                row = {"da4ml_cost": float(comb.cost)}
                if args.yosys:
                    cells = synthesize(Path(tmp), TOP, per_stage=False).total
                    row.update(yosys_lut=cells.lut, yosys_ff=cells.ff)
            out["variants"][name] = row
    finally:
        rtl.quantize_elements = original
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
