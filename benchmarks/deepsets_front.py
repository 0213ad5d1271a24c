"""LUT-vs-AUC front of constituent (DeepSets) b taggers: worst of training seeds against yosys LUTs (prints JSON).

Each point is ``configs/l1_bjet_deepsets.yaml`` with a few ``--set`` overrides (φ/ρ widths, slots,
fields, bits, pruning, pooling). For every point:

- ``qtrigger run`` once per training seed (default 1, 2, 3; C-simulation off, the 240 MHz clock
  ``hls.clock_period_ns=4.166`` and T = 6 of the acceptance), b vs light AUC on the ttbar test jets
  (``metrics.json`` ``qat.auc_by_flavour.test_jets.b_vs_light``) and, for choosing between points and
  recipes, on the VALIDATION jets (the run's own split, read again here; the integer reference's output:
  :func:`validation_auc`, cached as ``front_val.json`` in the run);
- ``qtrigger hls rtl`` (da4ml Verilog, Verilator latency/II and exactness, yosys cells) on the
  first seed's run only: the hardware depends on the trained weights, but much less than on the shape;
- the analytic ``SetNetwork`` estimate next to yosys (part 5 of issue 31): ratio = estimate LUT / yosys LUT.
  It is recomputed from the first seed's trained network with the current code (:func:`estimates`), so a run
  trained before a change of the model reads the same as a new one: as ``hls.estimate`` now gives it (each
  field at its own word, calibrated), the model's LUTs before the calibration, and the model with every field
  at the common input type (the estimate before issue 31's per-field words). ``calibration_fit`` is the
  factor that makes the mean ratio 1 on the points synthesized (``SET_LUT_FACTOR`` is set from it; each
  point's ratio with the factor fitted on the OTHER points is ``estimate_over_yosys_loo``).

Finished runs and RTL projects are reused (a killed front resumes); ``--fresh`` retrains.

Usage: python benchmarks/deepsets_front.py [--only a,b] [--seeds 1,2,3] [--no-rtl] [--plot docs/deepsets_front.png]
       python benchmarks/deepsets_front.py --list
The JSON (one object per point plus the front) goes to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qtrigger.emulate.sets import extract_set_network  # noqa: E402
from qtrigger.estimate.latency import estimate_latency_strategy  # noqa: E402
from qtrigger.firmware.synth import synthesize  # noqa: E402
from qtrigger.metrics import flavour_aucs  # noqa: E402
from qtrigger.runs.finished import FinishedRun  # noqa: E402
from qtrigger.runs.pipeline import prepare_data  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BASE = "configs/l1_bjet_deepsets.yaml"
SET_TOP = "qtrigger_set_net"
COMMON = ["hls.csim=false", "hls.clock_period_ns=4.166", "hls.time_multiplexing=6"]


def bits(n: int) -> list[str]:
    """Weight, bias and activation bits all at ``n``."""
    return [f"quantization.weight_bits={n}", f"quantization.bias_bits={n}", f"quantization.activation_bits={n}"]


def wa(weight: int, activation: int) -> list[str]:
    """Weight and bias bits at ``weight``, activation bits at ``activation``."""
    return [f"quantization.weight_bits={weight}", f"quantization.bias_bits={weight}",
            f"quantization.activation_bits={activation}"]


LONG = ["training.epochs=60", "training.early_stopping_patience=12"]
NO_DZ = ["features.names=[pt,deta,dphi,charge,class,d0]", "features.saturation_intended=[d0]"]
FIVE = ["features.names=[pt,deta,dphi,d0,dz]"]
COSINE = ["training.lr_schedule=cosine"]
ANGLE = 0.004363323129985824  # π/720, the reader's angle LSB
# narrower input words (features.formats): Δη, Δφ 8 bits (±0.56 rad, a jet of R = 0.4 fits), pT 0.5 GeV × 9 bits
NARROW = [f"features.formats.deta={{lsb: {ANGLE}, bits: 8, signed: true}}",
          f"features.formats.dphi={{lsb: {ANGLE}, bits: 8, signed: true}}", "features.formats.pt={lsb: 0.5, bits: 9}"]
# name -> overrides of the base config (the shipped one: φ [32, 16], ρ [16], 8-bit, 16 slots, 7 fields).
POINTS = {
    "phi16_rho16_b6": ["model.phi=[16]", "model.rho=[16]", *bits(6)],
    "phi8_rho16_b6": ["model.phi=[8]", "model.rho=[16]", *bits(6)],
    "phi8_rho8_c8_b6": ["model.phi=[8]", "model.rho=[8]", "model.constituents=8", *bits(6)],
    "phi16_rho16_c8_b6": ["model.phi=[16]", "model.rho=[16]", "model.constituents=8", *bits(6)],
    "phi12_rho16_b5": ["model.phi=[12]", "model.rho=[16]", *bits(5)],
    "phi8_rho16_b4": ["model.phi=[8]", "model.rho=[16]", *bits(4)],
    "phi12_rho16_b6_p50": ["model.phi=[12]", "model.rho=[16]", *bits(6), "pruning.enabled=true",
                           "pruning.target_sparsity=0.5"],
    "phi8_rho16_b6_nodz": ["model.phi=[8]", "model.rho=[16]", *bits(6), *NO_DZ],
    "phi8_rho16_b6_max": ["model.phi=[8]", "model.rho=[16]", *bits(6), "model.pooling=max"],
    "phi12_rho16_b6_5f": ["model.phi=[12]", "model.rho=[16]", *bits(6), *FIVE],
    # narrow weights, 8-bit activations (φ's output widths feed only the pooling adders and ρ)
    "phi8_rho16_w6a8": ["model.phi=[8]", "model.rho=[16]", *wa(6, 8)],
    "phi8_rho32_w6a8": ["model.phi=[8]", "model.rho=[32]", *wa(6, 8)],
    "phi12_rho16_w4a8": ["model.phi=[12]", "model.rho=[16]", *wa(4, 8)],
    "phi16_rho16_w4a8": ["model.phi=[16]", "model.rho=[16]", *wa(4, 8)],
    "phi8_rho16_b8": ["model.phi=[8]", "model.rho=[16]", *bits(8)],
    # longer training (60 epochs, patience 12 instead of 30 and 6)
    "phi8_rho16_b6_long": ["model.phi=[8]", "model.rho=[16]", *bits(6), *LONG],
    "shipped": [],  # l1_bjet_deepsets itself (φ [32, 16], 8-bit): ~231k da4ml LUT-equivalents, no yosys here
    "phi16_rho16_w4a8_nodz": ["model.phi=[16]", "model.rho=[16]", *wa(4, 8), *NO_DZ],
    "phi16_rho16_w4a8_nodz_long": ["model.phi=[16]", "model.rho=[16]", *wa(4, 8), *NO_DZ, *LONG],
    # issue 31, per-field input words in the RTL (the φ inputs at their own widths): wider φ now fits
    "phi12_rho16_b6": ["model.phi=[12]", "model.rho=[16]", *bits(6)],
    "phi16_rho16_b6_cos": ["model.phi=[16]", "model.rho=[16]", *bits(6), *COSINE],
    "phi16_rho16_b6_cos_last": ["model.phi=[16]", "model.rho=[16]", *bits(6), *COSINE, "training.keep_epoch=last"],
    "phi12_rho16_b6_cos": ["model.phi=[12]", "model.rho=[16]", *bits(6), *COSINE],
    "phi16_rho16_w4a6": ["model.phi=[16]", "model.rho=[16]", *wa(4, 6)],
    "phi16_rho16_b6_narrow": ["model.phi=[16]", "model.rho=[16]", *bits(6), *NARROW],
    "phi12_rho16_b6_narrow": ["model.phi=[12]", "model.rho=[16]", *bits(6), *NARROW],
    "phi8_rho16_b6_narrow": ["model.phi=[8]", "model.rho=[16]", *bits(6), *NARROW],
    "phi16_rho16_b6_cos_narrow": ["model.phi=[16]", "model.rho=[16]", *bits(6), *COSINE, *NARROW],
    "phi16_rho16_b5_cos": ["model.phi=[16]", "model.rho=[16]", *bits(5), *COSINE],
    "phi16_rho16_w4a6_cos": ["model.phi=[16]", "model.rho=[16]", *wa(4, 6), *COSINE],
    "phi12_rho16_b6_cos_narrow": ["model.phi=[12]", "model.rho=[16]", *bits(6), *COSINE, *NARROW],
    "phi16_rho16_b5_cos_narrow": ["model.phi=[16]", "model.rho=[16]", *bits(5), *COSINE, *NARROW],
    "phi14_rho16_b6_cos_narrow": ["model.phi=[14]", "model.rho=[16]", *bits(6), *COSINE, *NARROW],
    "phi16_rho8_b6_cos_narrow": ["model.phi=[16]", "model.rho=[8]", *bits(6), *COSINE, *NARROW],
}


def log(message: str) -> None:
    """Progress to stderr (stdout is the JSON)."""
    print(f"[deepsets_front {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def qtrigger(args: list[str]) -> tuple[int, str, float]:
    """``python -m qtrigger ARGS`` in the repository (return code, stdout, seconds)."""
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "qtrigger", *args], cwd=REPO, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        log(f"qtrigger {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return proc.returncode, proc.stdout, time.time() - start


def run_name(point: str, seed: int) -> str:
    """Run directory name of one (point, seed)."""
    return f"dsf_{point}_s{seed}"


def train(point: str, seed: int, fresh: bool) -> dict | None:
    """The run's metrics (trained now unless a finished run exists and ``fresh`` is off)."""
    run = REPO / "runs" / run_name(point, seed)
    if fresh or not (run / "metrics.json").is_file():
        sets = [*COMMON, *POINTS[point], f"name={run_name(point, seed)}", f"training.seed={seed}"]
        code, _, seconds = qtrigger(["run", BASE, "--overwrite", *[a for s in sets for a in ("--set", s)]])
        log(f"{point} seed {seed}: trained in {seconds:.0f} s (exit {code})")
    return json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else None


def rtl(point: str, seed: int, fresh: bool) -> tuple[dict | None, dict | None]:
    """``qtrigger hls rtl --no-synth`` on the run (Verilator latency, II, exactness), then yosys on the flattened
    top only (``synthesize(per_stage=False)``: half the time of the CLI's per-stage synthesis, same total);
    both reused from the run folder unless ``fresh``."""
    run = REPO / "runs" / run_name(point, seed)
    if fresh or not (run / "rtl.json").is_file():
        code, _, seconds = qtrigger(["hls", "rtl", str(run.relative_to(REPO)), "--overwrite", "--no-synth", "--json"])
        log(f"{point} seed {seed}: RTL + Verilator in {seconds:.0f} s (exit {code})")
    if not (run / "rtl.json").is_file():
        return None, None
    result = json.loads((run / "rtl.json").read_text())
    synth_file = run / "front_yosys.json"
    if fresh or not synth_file.is_file():
        start = time.time()
        synth = synthesize(result["directory"], top=SET_TOP, per_stage=False)
        synth_file.write_text(json.dumps(synth.to_json(), indent=2))
        log(f"{point} seed {seed}: yosys in {time.time() - start:.0f} s: {synth.total.lut} LUT")
    return result, json.loads(synth_file.read_text())


def validation_auc(point: str, seed: int) -> float | None:
    """b vs light AUC of the run's integer reference on its VALIDATION jets (the split of the run's own config,
    read again), cached in the run as ``front_val.json``; None without a finished run."""
    run_dir = REPO / "runs" / run_name(point, seed)
    cache = run_dir / "front_val.json"
    if cache.is_file():
        return json.loads(cache.read_text())["b_vs_light"]
    if not (run_dir / "metrics.json").is_file():
        return None
    run = FinishedRun.load(run_dir)
    prepared = prepare_data(run.config)
    val = prepared.split.val
    scores = extract_set_network(run.load_model("qat")).forward(prepared.inputs[val])[:, 0]
    auc = flavour_aucs(prepared.table.truth[val], scores)["b_vs_light"]
    cache.write_text(json.dumps({"b_vs_light": auc, "jets": int(len(scores))}))
    return auc


def estimates(point: str, seed: int) -> dict:
    """The run's analytic estimate (LUT) with the current code: ``estimate_lut`` as ``hls.estimate`` gives it now
    (fields at their own words, calibrated), ``estimate_lut_model`` the same before the calibration and
    ``estimate_lut_common`` the model with every field at the common input type (before the per-field words)."""
    run = FinishedRun.load(REPO / "runs" / run_name(point, seed))
    network, hls = extract_set_network(run.load_model("qat")), run.config.hls
    per_field = estimate_latency_strategy(network, hls.clock_period_ns, 1, hls.part,
                                          tuple(run.preprocessor.word_types()))
    common = estimate_latency_strategy(network, hls.clock_period_ns, 1, hls.part)
    return {"estimate_lut": per_field.lut, "estimate_lut_model": model_lut(per_field),
            "estimate_lut_common": model_lut(common)}


def model_lut(estimate) -> int:
    """The analytic model's LUTs before any calibration (the sum of its layers)."""
    return sum(layer["lut_total"] for layer in estimate.per_layer)


def ratio_summary(rows: list[dict]) -> dict:
    """Mean estimate / yosys over the synthesized points: now, before the calibration, with the common input type,
    and da4ml's own estimate; the calibration factor fitted on them and each point's leave-one-out ratio."""
    done = [r for r in rows if r.get("yosys_lut") and r.get("estimate_lut_model")]
    if not done:
        return {}
    over = {key: [r[key] / r["yosys_lut"] for r in done] for key in
            ("estimate_lut", "estimate_lut_model", "estimate_lut_common", "da4ml_lut")}
    model = over["estimate_lut_model"]
    for i, r in enumerate(done):
        others = [m for j, m in enumerate(model) if j != i]
        r["estimate_over_yosys_loo"] = round(model[i] * len(others) / sum(others), 3) if others else None
    return {"points": len(done), **{f"{key}_over_yosys_mean": round(sum(v) / len(v), 3) for key, v in over.items()},
            "calibration_fit": round(len(model) / sum(model), 3),
            "loo_mean": round(sum(r["estimate_over_yosys_loo"] for r in done) / len(done), 3) if len(done) > 1
            else None}


def b_vs_light(metrics: dict | None) -> float | None:
    """The QAT b vs light test AUC of one run."""
    if metrics is None:
        return None
    return metrics["qat"].get("auc_by_flavour", {}).get("test_jets", {}).get("b_vs_light")


def point_row(point: str, seeds: list[int], with_rtl: bool, fresh: bool) -> dict:
    """One point: AUC per seed and the worst, the analytic estimate, the first seed's RTL and yosys figures."""
    runs = {seed: train(point, seed, fresh) for seed in seeds}
    aucs = {seed: b_vs_light(m) for seed, m in runs.items()}
    first = runs[seeds[0]]
    val = {seed: validation_auc(point, seed) for seed in seeds}
    row = {"point": point, "overrides": POINTS[point], "b_vs_light": aucs,
           "worst_b_vs_light": min((a for a in aucs.values() if a is not None), default=None),
           "val_b_vs_light": val, "worst_val_b_vs_light": min((a for a in val.values() if a is not None), default=None),
           "float_b_vs_light": {s: b_vs_light({"qat": m["float"]}) if m and m.get("float") else None
                                for s, m in runs.items()},
           **(estimates(point, seeds[0]) if first else {})}
    result, total = rtl(point, seeds[0], fresh) if with_rtl and first else (None, None)
    if result and total:
        lay = result.get("per_event_layouts") or {}
        row.update({
            "yosys_lut": total.get("lut"), "yosys_ff": total.get("ff"), "yosys_carry": total.get("carry"),
            "yosys_dsp": total.get("dsp"), "da4ml_lut": round(result["da4ml_estimate"]["cost_lut_estimate"]),
            "latency_cycles": result["latency_cycles"], "ii": result["ii"],
            "mismatches": result["mismatches_vs_model"], "rows_checked": result["rows_checked"],
            "rtl_seconds": result.get("seconds"),
            # rtl.json's layouts were sized on da4ml's estimate (--no-synth): scaled here to the yosys count
            "layouts": {k: {"instances": v["instances"], "ii": v["ii"],
                            "lut": round(v["total"]["lut"] * total["lut"] / round(result["da4ml_estimate"]
                                                                                  ["cost_lut_estimate"])),
                            "event_latency_cycles": v["event_latency_cycles"], "fits": v["fits_event"]}
                        for k, v in lay.items() if isinstance(v, dict) and "instances" in v},
        })
        if row["yosys_lut"]:
            row["estimate_over_yosys"] = round(row["estimate_lut"] / row["yosys_lut"], 3)
            row["da4ml_over_yosys"] = round(row["da4ml_lut"] / row["yosys_lut"], 3)
    return row


def front(rows: list[dict]) -> list[str]:
    """Points no other point beats on both yosys LUT (fewer) and worst-seed AUC (higher)."""
    done = [r for r in rows if r.get("yosys_lut") and r.get("worst_b_vs_light") is not None]
    return [r["point"] for r in done
            if not any(o["yosys_lut"] <= r["yosys_lut"] and o["worst_b_vs_light"] >= r["worst_b_vs_light"]
                       and o is not r and (o["yosys_lut"], o["worst_b_vs_light"]) != (r["yosys_lut"],
                                                                                   r["worst_b_vs_light"])
                       for o in done)]


def plot(rows: list[dict], path: Path, goal_auc: float, goal_lut: int) -> None:
    """Worst-seed AUC against yosys LUT, the front joined, the goal box dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.get("yosys_lut") and r.get("worst_b_vs_light") is not None]
    on = set(front(rows))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rank = {name: i for i, name in enumerate(sorted(on, key=lambda n: next(r["yosys_lut"] for r in done
                                                                            if r["point"] == n)))}
    for r in done:
        front_point = r["point"] in on  # front: labels above-left (staggered), others below-right
        i = rank.get(r["point"], 0)
        ax.scatter(r["yosys_lut"], r["worst_b_vs_light"], color="C0" if front_point else "C7", zorder=3)
        ax.annotate(r["point"], (r["yosys_lut"], r["worst_b_vs_light"]), fontsize=7,
                    ha="right" if front_point else "left", textcoords="offset points",
                    xytext=(-4, 4 + 9 * (i % 2)) if front_point else (5, -11))
    line = sorted((r["yosys_lut"], r["worst_b_vs_light"]) for r in done if r["point"] in on)
    if line:
        ax.plot(*zip(*line), color="C0", lw=1)
    ax.axhline(goal_auc, ls="--", color="C3", lw=0.8)
    ax.axvline(goal_lut, ls="--", color="C3", lw=0.8)
    ax.margins(y=0.12)
    ax.set_xlabel("yosys LUT per instance (da4ml RTL, II 1, 4.166 ns)")
    ax.set_ylabel("b vs light AUC, worst of training seeds")
    ax.set_title("DeepSets b taggers on ttbar (μ = 0): synthesized front")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    """Train, synthesize and print the front as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated point names (default: all)")
    parser.add_argument("--seeds", default="1,2,3", help="training seeds (default 1,2,3); RTL on the first")
    parser.add_argument("--no-rtl", action="store_true", help="train only (no Verilator, no yosys)")
    parser.add_argument("--fresh", action="store_true", help="retrain and resynthesize finished points")
    parser.add_argument("--plot", default=None, metavar="PNG", help="write the front plot here")
    parser.add_argument("--goal", default="0.970,25000", help="goal AUC,LUT drawn on the plot")
    parser.add_argument("--list", action="store_true", help="print the points and exit")
    args = parser.parse_args(argv)
    if args.list:
        print(json.dumps(POINTS, indent=2))
        return 0
    names = args.only.split(",") if args.only else list(POINTS)
    unknown = [n for n in names if n not in POINTS]
    if unknown:
        print(f"qtrigger: error: --only {','.join(unknown)}: unknown point (see --list)", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name in names:
        rows.append(point_row(name, seeds, not args.no_rtl, args.fresh))
        log(json.dumps({k: rows[-1].get(k) for k in ("point", "worst_val_b_vs_light", "worst_b_vs_light", "yosys_lut",
                                                     "estimate_lut")}))
    goal_auc, goal_lut = (float(v) for v in args.goal.split(","))
    if args.plot:
        plot(rows, Path(args.plot), goal_auc, int(goal_lut))
    meets = [r for r in rows if r.get("yosys_lut") and r["yosys_lut"] <= goal_lut and r.get("ii") == 1
             and r.get("mismatches") == 0 and (r.get("worst_b_vs_light") or 0) >= goal_auc]
    print(json.dumps({"seeds": seeds, "points": rows, "front": front(rows),
                      "estimate_vs_yosys": ratio_summary(rows),
                      "smallest_meeting_goal": min(meets, key=lambda r: r["yosys_lut"])["point"] if meets else None},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
