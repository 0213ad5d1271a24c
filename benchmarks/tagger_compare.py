"""Summary-feature MLP b taggers against DeepSets on one LUT–AUC plot (issue 31, part 4; prints JSON).

MLP family: ``configs/l1_bjet_displaced.yaml`` (10 jet summaries + 5 prompt-track summaries) trained on the
ttbar jets only, so its b vs light test AUC is on the same 15,493 ttbar test jets as the DeepSets' (the split
is by event and the same for every config of these samples), at a few widths. For each: ``qtrigger run``
(seed 1, C-simulation off, trigger off, the 240 MHz clock), then ``qtrigger hls rtl`` (da4ml RTL, Verilator,
yosys). DeepSets: the rows of ``benchmarks/deepsets_front.py``'s JSON (``--front FILE``), worst-seed AUC
against the seed-1 run's yosys LUTs. LUTs per event = per-jet instance × ``trigger.seed_jets`` (layout (a),
one instance per jet; yosys gives no timing).

Usage: python benchmarks/tagger_compare.py --front FRONT.json [--plot docs/tagger_compare.png]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE = "configs/l1_bjet_displaced.yaml"
TTBAR_ONLY = "data.samples=[{name: ttbar, files: [data/default/ttbar.root], role: signal}]"
COMMON = [TTBAR_ONLY, "hls.csim=false", "trigger.enabled=false", "hls.clock_period_ns=4.166"]
# name -> overrides of l1_bjet_displaced (shipped: [32, 16], 6-bit, 50 % pruned)
MLPS = {
    "mlp_32_16": [],
    "mlp_16_8": ["model.hidden=[16,8]"],
    "mlp_64_32": ["model.hidden=[64,32]"],
    "mlp_64_32_b8_p0": ["model.hidden=[64,32]", "quantization.weight_bits=8", "quantization.bias_bits=8",
                        "quantization.activation_bits=8", "pruning.enabled=false"],
}
SEED_JETS = 8  # trigger.seed_jets default: the jets each event tags


def log(message: str) -> None:
    """Progress to stderr (stdout is the JSON)."""
    print(f"[tagger_compare {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def qtrigger(args: list[str]) -> int:
    """``python -m qtrigger ARGS`` in the repository; its return code."""
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "qtrigger", *args], cwd=REPO, capture_output=True, text=True)
    log(f"qtrigger {' '.join(args[:2])}: exit {proc.returncode} in {time.time() - start:.0f} s "
        f"{proc.stderr.strip().splitlines()[-1:] if proc.returncode else ''}")
    return proc.returncode


def mlp_row(name: str) -> dict:
    """Train (unless finished) and synthesize (unless done) one MLP; its AUC and yosys figures."""
    run = REPO / "runs" / f"tc_{name}"
    if not (run / "metrics.json").is_file():
        sets = [*COMMON, *MLPS[name], f"name=tc_{name}"]
        qtrigger(["run", BASE, "--overwrite", *[a for s in sets for a in ("--set", s)]])
    metrics = json.loads((run / "metrics.json").read_text())
    if not (run / "rtl.json").is_file():
        qtrigger(["hls", "rtl", str(run.relative_to(REPO)), "--overwrite", "--json"])
    rtl = json.loads((run / "rtl.json").read_text()) if (run / "rtl.json").is_file() else {}
    lut = (rtl.get("synth") or {}).get("lut")
    return {"point": name, "form": "mlp", "overrides": MLPS[name],
            "b_vs_light": metrics["qat"]["auc_by_flavour"]["test_jets"]["b_vs_light"],
            "yosys_lut": lut, "latency_cycles": rtl.get("latency_cycles"), "ii": rtl.get("ii"),
            "mismatches": rtl.get("mismatches_vs_model"), "lut_per_event": lut * SEED_JETS if lut else None}


def plot(mlps: list[dict], sets: list[dict], path: Path) -> None:
    """AUC against yosys LUT per instance, MLPs and DeepSets in two colours, LUT axis logarithmic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rows, colour, label in ((mlps, "C1", "summary-feature MLP (seed 1)"),
                                (sets, "C0", "DeepSets (worst of 3 seeds)")):
        done = [r for r in rows if r.get("yosys_lut") and r.get("b_vs_light")]
        ax.scatter([r["yosys_lut"] for r in done], [r["b_vs_light"] for r in done], color=colour, label=label, zorder=3)
        for r in done:
            ax.annotate(r["point"], (r["yosys_lut"], r["b_vs_light"]), fontsize=6, textcoords="offset points",
                        xytext=(4, -9))
    ax.set_xscale("log")
    ax.axhline(0.970, ls="--", color="C3", lw=0.8)
    ax.axvline(25000, ls="--", color="C3", lw=0.8)
    ax.set_xlabel("yosys LUT per instance (one jet; da4ml RTL, II 1, 4.166 ns)")
    ax.set_ylabel("b vs light AUC, ttbar test jets")
    ax.set_title("b taggers on the same ttbar jets (μ = 0)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    """Train and synthesize the MLPs, read the DeepSets front, print JSON, optionally plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--front", required=True, help="JSON printed by benchmarks/deepsets_front.py")
    parser.add_argument("--plot", default=None, metavar="PNG")
    parser.add_argument("--only", default=None, help="comma-separated MLP names (default: all)")
    args = parser.parse_args(argv)
    front_path = Path(args.front)
    if not front_path.is_file():
        print(f"qtrigger: error: --front {front_path}: no such file", file=sys.stderr)
        return 2
    names = args.only.split(",") if args.only else list(MLPS)
    unknown = [n for n in names if n not in MLPS]
    if unknown:
        print(f"qtrigger: error: --only {','.join(unknown)}: unknown MLP (expected {','.join(MLPS)})", file=sys.stderr)
        return 2
    mlps = [mlp_row(n) for n in names]
    sets = [{"point": r["point"], "form": "deepsets", "b_vs_light": r.get("worst_b_vs_light"),
             "yosys_lut": r.get("yosys_lut"),
             "lut_per_event": r["yosys_lut"] * SEED_JETS if r.get("yosys_lut") else None}
            for r in json.loads(front_path.read_text())["points"]]
    if args.plot:
        plot(mlps, sets, Path(args.plot))
    print(json.dumps({"seed_jets": SEED_JETS, "mlp": mlps, "deepsets": sets}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
