"""The training-recipe table (issue 30, part 5): kept epoch x learning-rate schedule x training seed, per config.

Usage:
    python benchmarks/training_recipe.py CONFIG [CONFIG ...] [--seeds 1 2 3] [--set key=value ...] > recipe.json
    python benchmarks/training_recipe.py --table recipe.json [more.json ...]      # the markdown table

For every config and every recipe ({plateau, cosine} x {best, last}) and training seed, the QAT model is trained
exactly as ``qtrigger run`` trains it (same data, split, input grid, seed handling; the float twin is skipped),
then the exact integer reference gives the **validation AUC** (the decision's basis), the test AUC and da4ml's
cost of the network's Verilog (LUT-equivalents, not yosys). The data are read once per config. JSON on stdout,
one row per training; ``--table`` folds the rows into one line per (config, recipe): per-seed values, the worst
seed's validation AUC, and the recipe each config would choose on validation only (the highest worst-seed
validation AUC).
"""

import argparse
import gc
import json
import sys
import time

from qtrigger.config import load_config
from qtrigger.emulate.sets import extract_any_network, settle_overflow
from qtrigger.firmware.rtl import da4ml_trace
from qtrigger.firmware.rtl_stage import ROUNDING
from qtrigger.metrics import roc_auc
from qtrigger.models.train import configure_tensorflow
from qtrigger.runs.pipeline import prepare_data, train_models

RECIPES = [("plateau", "best"), ("plateau", "last"), ("cosine", "best"), ("cosine", "last")]


def measure(path: str, seeds: list[int], overrides: list[str]) -> list[dict]:
    """One row per (recipe, seed) of the config at ``path``: validation/test AUC, da4ml cost, kept epoch."""
    base = load_config(path, overrides + ["training.float_twin=false"])
    prepared = prepare_data(base)
    level, split = prepared.input_level, prepared.split
    rows = []
    for schedule, keep in RECIPES:
        for seed in seeds:
            config = load_config(path, overrides + ["training.float_twin=false", f"training.lr_schedule={schedule}",
                                                    f"training.keep_epoch={keep}", f"training.seed={seed}",
                                                    "training.verbose=false"])
            started = time.perf_counter()
            configure_tensorflow(seed, config.training.threads)
            qat, _ = train_models(config, prepared)
            settle_overflow(qat.model)
            network = extract_any_network(qat.model)
            codes = network.forward_codes(prepared.inputs[split.test])  # as qtrigger run's qat.auc
            test_auc = roc_auc(config.labels.signal_mask(prepared.labels[split.test]),
                               level.scores(config, codes * network.output_type.lsb))
            comb, _ = da4ml_trace(network, ROUNDING)
            val_auc = level.validation_auc(config, prepared, network)
            rows.append({"config": path, "method": config.quantization.method, "lr_schedule": schedule,
                         "keep_epoch": keep, "seed": seed, "val_auc": val_auc, "test_auc": test_auc,
                         "da4ml_lut": round(float(comb.cost)), "kept_epoch": qat.best_epoch,
                         "epochs_run": qat.epochs_run, "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            _release(qat)
    return rows


def _release(qat) -> None:
    """Free the trained model's graph before the next training (tf-keras keeps it in its session)."""
    del qat
    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].backend.clear_session()
    gc.collect()


def table(rows: list[dict]) -> str:
    """Markdown: one line per (config, recipe) with seeds in order, and each config's validation-only choice."""
    lines = ["| config | LR schedule, kept epoch | validation AUC per seed (worst) | test AUC per seed | "
             "da4ml LUT per seed |", "|---|---|---|---|---|"]
    chosen = {}
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["config"], row["lr_schedule"], row["keep_epoch"]), []).append(row)
    for (config, schedule, keep), group in groups.items():
        group.sort(key=lambda r: r["seed"])
        worst = min(r["val_auc"] for r in group)
        if worst > chosen.get(config, ("", -1.0))[1]:
            chosen[config] = (f"{schedule}, {keep}", worst)
        per = lambda key, fmt: " / ".join(format(r[key], fmt) for r in group)  # noqa: E731
        lines.append(f"| {config.split('/')[-1]} | {schedule}, {keep} | {per('val_auc', '.4f')} ({worst:.4f}) | "
                     f"{per('test_auc', '.4f')} | {per('da4ml_lut', ',')} |")
    lines.append("")
    lines += [f"- {config.split('/')[-1]}: highest worst-seed validation AUC with {recipe} ({worst:.4f})"
              for config, (recipe, worst) in chosen.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="*")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--table", nargs="+", metavar="JSON", help="print the markdown table of earlier outputs")
    args = parser.parse_args()
    if args.table:
        rows = [row for name in args.table for row in json.load(open(name))["rows"]]
        print(table(rows))
        return 0
    rows = [row for path in args.configs for row in measure(path, args.seeds, args.overrides)]
    print(json.dumps({"configs": args.configs, "seeds": args.seeds, "overrides": args.overrides, "rows": rows},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
