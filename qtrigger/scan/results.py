"""Scan results: the table rebuilt from result files, Pareto fronts, plot and report."""

from __future__ import annotations

import math
from pathlib import Path

from qtrigger.plotting import label_simulation, save, style
from qtrigger.rundir import atomic_path, atomic_write_text
from qtrigger.scan.plan import COST_LABELS, Budgets, ScanConfig, Trial, _compact
from qtrigger.scan.search import METHOD_KEY, SEED_KEY
from qtrigger.scan.seeds import point_id, worst_of_seeds
from qtrigger.scan.worker import _read_result

# ----------------------------------------------------------------------------------------
# Results: table, Pareto fronts, plot, report

METRIC_COLUMNS = [
    "qat_auc", "val_auc", "float_auc", "signal_efficiency", "qat_signal_efficiency", "trigger_signal_efficiency",
    "trigger_rate_hz", "trigger_threshold_code", "csim_jets", "csim_mismatched_jets",
    "latency_cycles", "latency_ns", "lut", "ff", "dsp", "bram",
    "event_instances", "event_latency_ns", "event_meets_ii", "event_lut", "event_ff", "event_dsp", "event_bram",
    "run_budget_fits", "nonzero_parameters", "parameters", "run_wall_seconds", "signal_efficiency_source",
    "rtl_lut", "rtl_ff", "rtl_da4ml_lut", "rtl_mismatches", "rtl_latency_cycles", "rtl_ii", "lut_calibrated",
]
TEXT_COLUMNS = ("signal_efficiency_source", "cost_lut_source")
LOWER_BOUNDS = ("qat_minus_float",)  # budgets that are minima (the others are maxima)
LUT_SOURCES = (("rtl_lut", "yosys"), ("rtl_da4ml_lut", "da4ml estimate"), ("lut", "hls4ml estimate"))


def axis_keys(scan: ScanConfig, trials: list[Trial]) -> list[str]:
    """The table's axis columns: the grid's axes, or every key the search trials set (in order of appearance)."""
    if scan.search is None:
        return list(scan.axes)
    return list(dict.fromkeys(k for t in trials for k in t.axes))


def measured_lut(row: dict) -> tuple[float | None, str | None]:
    """(LUTs, source): yosys cells where the RTL was synthesized, else da4ml's estimate, else hls4ml's
    (a set network's analytic estimate is calibrated to yosys, and its source says so)."""
    for column, source in LUT_SOURCES:
        if _number(row.get(column)):
            calibrated = column == "lut" and row.get("lut_calibrated")
            return row[column], f"{source}, calibrated to yosys" if calibrated else source
    return None, None


def collect_results(scan: ScanConfig, trials: list[Trial], scan_dir: Path):
    """One row per planned trial, from the result files (a trial without one has status 'missing')."""
    import pandas as pd

    rows = []
    keys = axis_keys(scan, trials)
    for trial in trials:
        result = _read_result(scan_dir / "trials" / trial.hash) or {}
        row = {"hash": trial.hash, "index": trial.index, "status": result.get("status", "missing")}
        if scan.search is not None:
            row.update(rung=trial.rung, final=trial.final, point=point_id(trial.point or {}))
        row.update({key: trial.axes.get(key) for key in keys})
        metrics = result.get("metrics") or {}
        row.update({name: metrics.get(name) for name in METRIC_COLUMNS})
        row["cost_lut"], row["cost_lut_source"] = measured_lut(row)
        row["qat_minus_float"] = (row["qat_auc"] - row["float_auc"]
                                  if _number(row["qat_auc"]) and _number(row["float_auc"]) else None)
        row.update(wall_seconds=result.get("wall_seconds"), attempts=result.get("attempts"),
                   tensorflow_threads=(result.get("tensorflow_threads") or {}).get("intra_op"),
                   started=result.get("started"), finished=result.get("finished"), error=result.get("error"))
        rows.append(row)
    table = pd.DataFrame(rows)
    for key in keys:  # lists (model.hidden) and mixed types as compact text, so parquet/csv can hold them
        values = table[key].tolist()
        present = [v for v in values if not _unset(v)]  # a key one method's points do not set (methods:)
        if any(isinstance(v, (list, dict, tuple)) for v in present) or len({type(v) for v in present}) > 1 and \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            table[key] = [None if _unset(v) else _compact(v) for v in values]
    for name in METRIC_COLUMNS:
        if name not in TEXT_COLUMNS and table[name].isna().all():
            table[name] = table[name].astype("float64")
    for name in ("cost_lut", "qat_minus_float"):
        if table[name].isna().all():
            table[name] = table[name].astype("float64")
    return table


def pareto_front(efficiency, cost) -> list[bool]:
    """True for points no other point beats (higher-or-equal efficiency at lower-or-equal cost)."""
    points = [(c, e, i) for i, (e, c) in enumerate(zip(efficiency, cost)) if _number(e) and _number(c)]
    points.sort(key=lambda p: (p[0], -p[1]))
    front = [False] * len(efficiency)
    best = -math.inf
    for c, e, i in points:
        if e > best:
            front[i] = True
            best = e
    return front


def _number(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def choose_cost_axes(table) -> dict[str, str]:
    """``{"lut": column, "latency": column}``: LUTs measured by yosys where synthesized, else estimated
    (``cost_lut``, its ``cost_lut_source`` says which), estimated latency; else non-zero parameters."""
    ok = table[table["status"] == "ok"] if len(table) else table
    axes = {}
    for kind, column in (("lut", "cost_lut"), ("latency", "latency_ns")):
        present = len(ok) and ok[column].notna().any()
        axes[kind] = column if present else "nonzero_parameters"
    return axes


def fits_budgets(row, budgets: Budgets) -> bool | None:
    """True/False against the configured budgets; None when none are set or an estimate is missing."""
    limits = budgets.configured()
    if not limits:
        return None
    verdict = True
    for column, limit in limits.items():
        value = row.get("cost_lut" if column == "lut" else column)
        if not _number(value):
            return None
        verdict = verdict and (value >= limit if column in LOWER_BOUNDS else value <= limit)
    return verdict


def write_outputs(scan: ScanConfig, trials: list[Trial], scan_dir: Path, wall_seconds: float | None = None):
    """Rebuild results.parquet/.csv from the result files, then pareto.png and report.md.

    Returns ``(table, cost_axes, pareto, points)``: ``points`` is the worst-of-seeds table
    (also points.parquet/.csv) when the search has ``training_seeds``, else None; the fronts
    (``pareto``: hashes, or point ids then) are on ``points`` when it exists, else on ``table``.
    """
    table = collect_results(scan, trials, scan_dir)
    points = ranked_points(scan, table, axis_keys(scan, trials))
    ranked = table if points is None else points
    cost_axes, pareto = mark_fronts(scan, ranked)
    for frame, name in ((table, "results"), (points, "points")):
        if frame is not None:
            with atomic_path(scan_dir / f"{name}.parquet") as temp:
                frame.to_parquet(temp, index=False)
            with atomic_path(scan_dir / f"{name}.csv") as temp:
                frame.to_csv(temp, index=False)
    plot_pareto(scan_dir / "pareto.png", ranked, scan, cost_axes)
    atomic_write_text(scan_dir / "report.md", render_scan_report(scan, table, cost_axes, wall_seconds, points))
    return table, cost_axes, pareto, points


def ranked_points(scan: ScanConfig, table, keys: list[str]):
    """The worst-of-seeds table when the search trains each point on several seeds, else None."""
    if scan.search is None or not scan.search.training_seeds:
        return None
    point_keys = [k for k in keys if k != SEED_KEY and k != "training.epochs"]
    return worst_of_seeds(table, point_keys, scan.physics_column, scan.search.training_seeds)


def mark_fronts(scan: ScanConfig, table) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Add ``fits_budgets`` and ``pareto_<kind>`` columns to ``table``; return (cost axes, front hashes)."""
    ok = ((table["status"] == "ok") & table.get("final", True)).tolist()  # halving: fully trained points only
    table["fits_budgets"] = [fits_budgets(row, scan.budgets) if good else None
                             for row, good in zip(table.to_dict("records"), ok)]
    cost_axes = choose_cost_axes(table)
    pareto = {}
    for kind, column in cost_axes.items():
        eff = [e if good else None for e, good in zip(table[scan.physics_column].tolist(), ok)]
        front = pareto_front(eff, table[column].tolist())
        table[f"pareto_{kind}"] = front
        pareto[kind] = [h for h, on in zip(table["hash"], front) if on]
    table["fits_budgets"] = table["fits_budgets"].astype("boolean")
    return cost_axes, pareto


def _unset(value) -> bool:
    """An axis value a trial does not have (None; pandas may hand it back as NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def plot_pareto(path: Path, table, scan: ScanConfig, cost_axes: dict[str, str]) -> None:
    """Signal efficiency vs cost (LUTs, latency; or non-zero parameters), front joined, budget fits marked."""

    plt = style()
    columns = list(dict.fromkeys(cost_axes.values()))  # one panel when both fall back to parameters
    fig, axes = plt.subplots(1, len(columns), figsize=(6.5 * len(columns), 5), squeeze=False)
    physics = scan.physics_column
    ok = table[(table["status"] == "ok") & table[physics].notna() & table.get("final", True)]
    limits = scan.budgets.configured()
    for ax, column in zip(axes[0], columns):
        kind = next(k for k, c in cost_axes.items() if c == column)
        data = ok[ok[column].notna()]
        for verdict, marks in ((True, dict(marker="o", color="tab:green", label="fits budgets")),
                               (False, dict(marker="x", color="tab:red", label="over budget")),
                               (None, dict(marker="o", facecolors="none", edgecolors="tab:blue",
                                           label="budgets not set" if not limits else "estimate missing"))):
            chosen = data[data["fits_budgets"].isna()] if verdict is None else \
                data[data["fits_budgets"].fillna(not verdict) == verdict]
            if len(chosen):
                ax.scatter(chosen[column], chosen[physics], s=40, zorder=3, **marks)
        if column == "cost_lut":
            _mark_lut_sources(ax, data, physics)
        mark_methods(ax, data, column, physics)
        front = data[data[f"pareto_{kind}"]].sort_values(column)
        if len(front):
            ax.step(front[column], front[physics], where="post", color="black", lw=1.2, zorder=2)
            ax.scatter(front[column], front[physics], s=130, facecolors="none", edgecolors="black",
                       lw=1.2, zorder=4, label="Pareto front")
            for _, row in front.iterrows():
                ax.annotate(row["hash"][:6], (row[column], row[physics]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        limit = limits.get("lut" if column == "cost_lut" else column)
        if limit is not None:
            ax.axvline(limit, color="tab:red", ls="--", lw=1, label=f"budget {limit:g}")
        label = COST_LABELS.get(column, column)
        if column == "nonzero_parameters":
            label += " (no hardware estimate)"
        ax.set_xlabel(label)
        ax.set_ylabel(physics.replace("_", " ") + (" (worst seed)" if "seeds_ok" in table else ""))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
        if not len(data):
            ax.text(0.5, 0.5, "no finished trial", ha="center", va="center", transform=ax.transAxes)
        label_simulation(ax, fontsize=9)
    what = "trials" if "seeds_ok" not in table else f"points (worst of {len(scan.search.training_seeds)} training seeds)"
    fig.suptitle(f"scan {scan.name}: {len(ok)} of {len(table)} {what}")
    save(fig, path, dpi=110)


def _mark_lut_sources(ax, data, physics: str) -> None:
    """Which LUT counts are measured: a filled black dot on every yosys-synthesized point."""
    synthesized = data[data["cost_lut_source"] == "yosys"]
    if len(synthesized):
        ax.scatter(synthesized["cost_lut"], synthesized[physics], s=12, color="black", zorder=5,
                   label="LUTs by yosys (else estimate)")


METHOD_MARKS = {"qkeras": dict(marker="s", edgecolors="tab:purple", label="QKeras"),
                "hgq": dict(marker="^", edgecolors="tab:orange", label="HGQ2 (learned widths)")}


def mark_methods(ax, data, column: str, physics: str) -> list[str]:
    """When the scan searches ``quantization.method``: one marker shape per method around each point, so QKeras
    and HGQ2 points share one plot; returns the methods drawn."""
    if METHOD_KEY not in data:
        return []
    drawn = []
    for method in sorted({m for m in data[METHOD_KEY] if isinstance(m, str)}):
        rows = data[data[METHOD_KEY] == method]
        marks = METHOD_MARKS.get(method, dict(marker="D", edgecolors="tab:gray", label=method))
        ax.scatter(rows[column], rows[physics], s=90, facecolors="none", lw=1.4, zorder=3.5, **marks)
        drawn.append(method)
    return drawn


PHYSICS_LABELS = {"signal_efficiency": "signal efficiency", "qat_auc": "QAT AUC", "val_auc": "QAT validation AUC"}


def render_scan_report(scan: ScanConfig, table, cost_axes: dict[str, str], wall_seconds: float | None,
                       points=None) -> str:
    """``report.md``: what was scanned, the Pareto fronts, every trial, failures.

    With ``points`` (the worst-of-seeds table) the fronts are on points, each ranked by its worst training seed.
    """
    n_ok = int((table["status"] == "ok").sum())
    n_failed = int((table["status"] == "failed").sum())
    n_missing = int((table["status"] == "missing").sum())
    axis_keys = list(scan.axes) if scan.search is None else [c for c in table.columns if "." in c]
    physics = scan.physics_column
    lines = [f"# Scan `{scan.name}`", ""]
    lines.append(f"- base run config: `{scan.base}`; overrides for every trial: "
                 + (", ".join(f"`{o}`" for o in scan.overrides) or "none"))
    lines += _sampling_lines(scan)
    lines.append(f"- trials: {len(table)} — {n_ok} ok, {n_failed} failed"
                 + (f", {n_missing} not finished (run again with `--resume`)" if n_missing else "")
                 + (f"; wall time {wall_seconds:g} s" if wall_seconds is not None else ""))
    sources = sorted({s for s in table["signal_efficiency_source"].dropna()})
    lines.append("- signal efficiency: " + ("; ".join(f"`{s}`" for s in sources) or "n/a"))
    limits = scan.budgets.configured()
    lines.append("- budgets (per network instance): " + (", ".join(
        f"{k} {'≥' if k in LOWER_BOUNDS else '≤'} {v:g}" for k, v in limits.items()) if limits else "none configured"))
    fallback = [kind for kind, column in cost_axes.items() if column == "nonzero_parameters"]
    if fallback:
        lines.append(f"- **no hardware estimate in the results** for {' and '.join(fallback)}: "
                     "the cost axis there is `model.nonzero_parameters` instead")
    lines += ["", "![Pareto fronts](pareto.png)", ""]
    columns = ["hash", *(["rung"] if scan.search is not None else []), *axis_keys, "signal_efficiency", "qat_auc", "val_auc",
               "float_auc", "qat_minus_float", "cost_lut", "cost_lut_source", "rtl_ff", "rtl_mismatches", "lut",
               "latency_ns", "dsp", "nonzero_parameters", "csim_mismatched_jets", "fits_budgets"]
    ranked, front_columns, worst = (table, columns, "") if points is None else (points, _point_columns(points), (
        f", worst of {len(scan.search.training_seeds)} training seeds"))
    for kind, column in cost_axes.items():
        title = {"lut": "LUTs (yosys where synthesized, else estimate: column cost_lut_source)",
                 "latency": "estimated latency"}[kind]
        if column == "nonzero_parameters":
            title = f"{title.split(' (')[0]} (fallback: non-zero parameters)"
        front = ranked[ranked[f"pareto_{kind}"]].sort_values(column)
        lines += [f"## Pareto front{worst}: {PHYSICS_LABELS.get(physics, physics)} vs {title}", ""]
        lines += _markdown_table(front, front_columns) if len(front) else ["no finished trial with both numbers", ""]
    if points is not None:
        lines += [f"## All points{worst}", "", _worst_note(scan), ""]
        lines += _markdown_table(points.sort_values(physics, ascending=False, na_position="last"),
                                 front_columns + ["status"])
    lines += ["## All trials", ""]
    lines += _markdown_table(table.sort_values(physics, ascending=False, na_position="last"),
                             columns + ["wall_seconds", "attempts", "status"])
    failed = table[table["status"] == "failed"]
    if len(failed):
        lines += ["## Failed trials", ""]
        lines += _markdown_table(failed, ["hash", *axis_keys, "attempts", "error"])
    lines += ["Per trial: `trials/<hash>/result.json` (summary), `trials/<hash>/<scan>_<hash>/` (the run: "
              "metrics.json, report.md, plots), `trials/<hash>/hls/` (the HLS project), `trials/<hash>/trial.log`.", ""]
    return "\n".join(lines)


def _point_columns(points) -> list[str]:
    """The worst-of-seeds table's columns in the report."""
    return ["hash", *[c for c in points.columns if "." in c], "seeds_ok", "worst_seed", "qat_auc", "val_auc", "qat_minus_float",
            "signal_efficiency", "cost_lut", "cost_lut_source", "rtl_ff", "rtl_mismatches", "rtl_ii",
            "csim_mismatched_jets", "fits_budgets", "trials"]


def _worst_note(scan: ScanConfig) -> str:
    """How a point is ranked on several training seeds."""
    seeds = ", ".join(str(s) for s in scan.search.training_seeds)
    low = ", ".join(f"`{c}`" for c in dict.fromkeys([scan.physics_column, "qat_auc"]))
    return (f"Each point is trained with training seeds {seeds} (one trial each) and ranked by its worst seed: "
            f"{low} and `qat_minus_float` (QAT − float twin AUC) are the minimum over "
            "the seeds, `cost_lut`, latency and mismatches the maximum; `hash` is the point's id, `trials` its "
            "trials' hashes. A point with a failed or unfinished seed is `incomplete` and off the fronts.")


def _sampling_lines(scan: ScanConfig) -> list[str]:
    """What was sampled: the grid's axes, or the search's sampler and space."""
    if scan.search is None:
        return ["- axes: " + "; ".join(f"`{k}` ∈ {{{', '.join(_compact(v) for v in vs)}}}" for k, vs in scan.axes.items()),
                f"- sampling: {scan.sampling}" + (f" (max_trials {scan.max_trials}, seed {scan.seed})"
                                                  if scan.sampling == "random" else "")]
    search = scan.search
    how = f"{search.sampler}, {search.trials} points, seed {search.seed}"
    if search.sampler == "halving":
        how += (f"; successive halving from {search.halving.min_epochs} epochs, eta {search.halving.eta} "
                "(only the last, fully trained rung is on the fronts)")
    spaces = [("search space", search.space)] + [(f"method `{name}` also", space)
                                                   for name, space in (search.methods or {}).items()]
    return [f"- {what}: " + "; ".join(f"`{k}` ∈ {{{', '.join(_compact(v) for v in vs)}}}" for k, vs in space.items())
            for what, space in spaces] + [
            f"- sampler: {how}; ranked on `{scan.physics_column}`" + (
                f", worst of training seeds {', '.join(map(str, search.training_seeds))} per point"
                if search.training_seeds else "")]


def _markdown_table(table, columns: list[str]) -> list[str]:
    columns = [c for c in columns if c in table.columns]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table[columns].to_dict("records"):
        out.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return out + [""]


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        import pandas as pd

        if value is pd.NA:
            return "–"
    except ImportError:
        pass
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


