"""Worst-of-N ranking: a search point trained on several training seeds, judged by its worst seed.

With ``search.training_seeds`` every fully trained point is one trial per seed (each with its
own hash). :func:`worst_of_seeds` folds those rows into one row per point: the smallest
physics metric, QAT AUC and QAT - float gap over the seeds, the largest cost (LUTs, latency,
mismatches), so a point that trains badly on one seed is ranked by that seed. A point with a
seed that failed or has not finished has no worst case yet (``complete`` False) and stays off
the fronts.
"""

from __future__ import annotations

import hashlib
import json
import math

from qtrigger.scan.search import SEED_KEY

WORST_IS_MIN = ("qat_auc", "val_auc", "float_auc", "qat_minus_float", "signal_efficiency", "qat_signal_efficiency",
                "trigger_signal_efficiency")
WORST_IS_MAX = ("cost_lut", "rtl_lut", "rtl_ff", "rtl_da4ml_lut", "lut", "ff", "dsp", "latency_ns",
                "latency_cycles", "rtl_latency_cycles", "rtl_ii", "rtl_mismatches", "csim_mismatched_jets",
                "nonzero_parameters", "run_wall_seconds")


def point_id(point: dict) -> str:
    """A point's identity over its seeds: sha256 of the point's canonical JSON, 12 hex digits."""
    text = json.dumps(point, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def worst_of_seeds(table, points: list[str], physics: str, seeds: list[int]):
    """One row per fully trained point of ``table`` (trial rows with ``point``, ``final``, ``training.seed``).

    ``points`` are the point columns (the search's axis keys without the seed). The row's
    ``hash`` is the point's id, ``trials`` its trial hashes, ``worst_seed`` the seed with the
    smallest ``physics``; the other columns are worst over the seeds (WORST_IS_MIN/MAX).
    """
    import pandas as pd

    final = table[table["final"].astype(bool)] if "final" in table else table
    rows = [_fold(group, points, physics, seeds) for _, group in final.groupby("point", sort=False)]
    columns = ["hash", *points, "seeds", "seeds_ok", "complete", "worst_seed", physics, *WORST_IS_MIN,
               *WORST_IS_MAX, "cost_lut_source", "trials"]
    out = pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))
    for name in (*WORST_IS_MIN, *WORST_IS_MAX, physics):
        out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
    out["status"] = ["ok" if c else "incomplete" for c in out["complete"]]
    return out


def _fold(group, points: list[str], physics: str, seeds: list[int]) -> dict:
    """The worst-of-seeds row of one point's trials."""
    first = group.iloc[0]
    ok = group[group["status"] == "ok"]
    done = sorted(int(s) for s in ok[SEED_KEY].dropna()) if SEED_KEY in ok else []
    row = {"hash": first["point"], **{k: first[k] for k in points}, "seeds": _join(seeds), "seeds_ok": _join(done),
           "complete": set(done) >= set(seeds) and len(ok) == len(group), "trials": _join(group["hash"])}
    for name in WORST_IS_MIN:
        row[name] = _extreme(ok, name, min)
    for name in WORST_IS_MAX:
        row[name] = _extreme(ok, name, max)
    row[physics] = _extreme(ok, physics, min)
    worst = ok.loc[ok[physics].astype("float64").idxmin()] if _extreme(ok, physics, min) is not None else None
    row["worst_seed"] = int(worst[SEED_KEY]) if worst is not None and SEED_KEY in ok else None
    sources = sorted({s for s in ok.get("cost_lut_source", []) if isinstance(s, str)})
    row["cost_lut_source"] = " + ".join(sources) or None
    return row


def _extreme(rows, column: str, pick):
    """``pick`` (min or max) of the finite values of ``column``; None when there are none."""
    if column not in rows:
        return None
    values = [float(v) for v in rows[column] if _finite(v)]
    return pick(values) if values else None


def _finite(value) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _join(values) -> str:
    return ",".join(str(v) for v in values)
