"""``metrics.json``, ``report.md``, plots and the text the CLI prints for a run or an evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtrigger.config import RunConfig
from qtrigger.metrics import roc_curve
from qtrigger.plotting import label_simulation, save, style
from qtrigger.results import RunResult
from qtrigger.rundir import atomic_write_text, json_default, write_json
from qtrigger.trigger.summary import hz_text, rate_text, seed_target_rows, trigger_summary_lines

_style = style  # earlier name, still imported by other modules
_json_default = json_default
__all__ = ["write_json", "write_run_report", "results_table", "render_report", "evaluation_text", "trigger_text"]


def as_result(metrics: RunResult | dict) -> RunResult:
    """A RunResult from either a RunResult or the plain ``metrics.json`` dict."""
    return metrics if isinstance(metrics, RunResult) else RunResult.from_json(metrics)


def write_run_report(directory: Path, config: RunConfig, metrics: RunResult | dict, artefacts: dict) -> None:
    """Everything a reader of ``runs/<name>/`` looks at: metrics, plots, report.md."""
    directory = Path(directory)
    result = as_result(metrics)
    plots = directory / "plots"
    plots.mkdir(exist_ok=True)
    write_json(directory / "metrics.json", result.to_json())
    plot_roc(plots / "roc.png", artefacts["test_labels"], artefacts["scores"])
    if "test_flavour" in artefacts:
        plot_flavour_roc(plots / "roc_flavour.png", artefacts["test_flavour"], artefacts["scores"])
    plot_scores(plots / "scores.png", artefacts["test_labels"], artefacts["scores"], result.qat.threshold)
    plot_history(plots / "training.png", artefacts["history"])
    if result.precision_profile:
        plot_precision_profile(plots / "precision_profile.png", result.precision_profile)
    atomic_write_text(directory / "report.md", render_report(config, result))


LINE_STYLES = ["-", "--", ":", "-."]  # one per model (QAT, float twin, C-simulation, ...)


def _save_curves(fig, ax, path: Path, xlabel: str, ylabel: str, legend: tuple[str, int]) -> None:
    """Label, legend, the simulation tag and save: the common tail of the ROC plots."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc=legend[0], fontsize=legend[1])
    label_simulation(ax)
    save(fig, path, dpi=90)


def plot_roc(path: Path, signal: np.ndarray, scores: dict[str, np.ndarray]) -> None:
    """Signal efficiency vs background efficiency (log scale), one curve per model."""
    plt = style()
    fig, ax = plt.subplots(figsize=(8, 7))
    for (label, values), line in zip(scores.items(), LINE_STYLES):
        bkg, sig = roc_curve(signal, values)
        ax.plot(bkg, sig, line, label=label)
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_ylim(0, 1)
    _save_curves(fig, ax, path, "Background jet efficiency", "Signal jet efficiency", ("lower right", 14))


def plot_flavour_roc(path: Path, flavour: np.ndarray, scores: dict[str, np.ndarray]) -> None:
    """Light-jet and c-jet mistag rate vs b-jet efficiency (``Jet_hadronFlavour`` 0, 4, 5), one curve per model."""
    plt = style()
    fig, ax = plt.subplots(figsize=(8, 7))
    b = flavour == 5
    others = [(flavour == code, name, colour) for code, name, colour in ((0, "light", "C0"), (4, "c", "C1"))
              if b.any() and (flavour == code).any()]
    for (label, values), line in zip(scores.items(), LINE_STYLES):
        for other, name, colour in others:
            pick = b | other
            mistag, eff = roc_curve(b[pick], values[pick])
            ax.plot(eff, mistag, line, color=colour, label=f"{label}, {name}")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1)
    ax.set_xlim(0, 1)
    _save_curves(fig, ax, path, "b-jet efficiency", "Mistag rate (light, c)", ("upper left", 12))


def plot_scores(path: Path, signal: np.ndarray, scores: dict[str, np.ndarray], threshold: float | None) -> None:
    """Score distributions of signal and background jets for the QAT model (and float twin)."""
    plt = style()
    fig, axes = plt.subplots(1, len(scores), figsize=(7 * len(scores), 6), squeeze=False)
    for ax, (label, values) in zip(axes[0], scores.items()):
        bins = np.linspace(np.percentile(values, 0.1), np.percentile(values, 99.9), 60)
        ax.hist(values[~signal], bins=bins, histtype="step", density=True, label="background")
        ax.hist(values[signal], bins=bins, histtype="step", density=True, label="signal")
        if threshold is not None and label.startswith("QAT"):
            ax.axvline(threshold, color="k", ls="--", label="working point")
        ax.set_yscale("log")
        ax.set_xlabel(f"{label} score (logit)")
        ax.legend(fontsize=12)
        label_simulation(ax, fontsize=11)
    save(fig, path, dpi=80)


def plot_history(path: Path, history: dict[str, dict]) -> None:
    """Training and validation loss per epoch."""
    plt = style()
    fig, ax = plt.subplots(figsize=(8, 6))
    for label, values in history.items():
        ax.plot(values.get("loss", []), label=f"{label} train")
        ax.plot(values.get("val_loss", []), "--", label=f"{label} val")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss")
    ax.legend(fontsize=12)
    save(fig, path, dpi=80)


def plot_precision_profile(path: Path, profile: list[dict]) -> None:
    """Per layer: the assigned type's range against the values observed on test jets."""
    plt = style()
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.8 * len(profile)))
    for row_index, row in enumerate(profile):
        y = len(profile) - row_index
        ax.plot([row["type_min"], row["type_max"]], [y, y], color="lightgray", lw=10, solid_capstyle="butt")
        ax.plot([row["observed_min"], row["observed_max"]], [y, y], color="tab:blue", lw=4, solid_capstyle="butt")
        flag = ""
        if row["clipped_by_design"] > 0:
            flag = f" clipped by quantizer {100 * row['clipped_by_design']:.1f} %"
        if row["overflow"] > 0.001:
            flag += f" FIRMWARE OVERFLOW {100 * row['overflow']:.2f} %"
        ax.text(row["type_max"], y + 0.2, f" {row['layer']}: {row['type']}{flag}", fontsize=11, va="bottom", ha="right")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_yticks([])
    ax.set_xlabel("value (grey: type range, blue: observed on test jets)")
    save(fig, path, dpi=80)


def _fmt(value, digits=4, percent=False):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{100 * value:.2f} %" if percent else f"{value:.{digits}f}"
    return str(value)


def _event_rows(r: RunResult) -> list[tuple[str, str, str]]:
    """The head of the table for an event-level run: events, preselection, event AUC (no per-jet metrics)."""
    d, c, t = r.data, r.csim, r.trigger or {}
    stress, f32 = c.get("stress", {}), c.get("qkeras_float32", {})
    by_part, presel = d.extra.get("events_by_part", {}), t.get("preselection", {})
    rows = [
        ("Events train / val / test", " / ".join(str(by_part.get(k)) for k in ("train", "val", "test")),
         f"split by event; trained on preselected train/val events ({d.n_jets.get('train')} / {d.n_jets.get('val')})"),
        ("Per-jet metrics", "left out", "the network scores events, not jets: judge it on the trigger table"),
    ]
    if presel.get("signal_efficiency") is not None and presel.get("description") != "none":
        rows.append(("Preselection (signal test events kept)",
                     f"{100 * presel['signal_efficiency']:.1f} ± {100 * presel['signal_efficiency_err']:.1f} %",
                     f"{presel['description']}; held-out rate {presel['held_out_rate_hz'] / 1e3:.0f} kHz"))
    rows += [
        ("Event AUC QAT / float twin", f"{_fmt(r.qat.auc)} / {_fmt(r.float_twin.auc if r.float_twin else None)}",
         "preselected test events, weighted as in training"),
        ("C-sim mismatched events", f"{c.get('mismatched_jets', 'n/a')} / {c.get('jets', 'n/a')}",
         f"every test event; max |diff| {c.get('max_abs_diff_lsb', 'n/a')} LSB vs exact integer model"),
        ("C-sim stress mismatches", f"{stress.get('mismatched_jets', 'n/a')} / {stress.get('jets', 'n/a')}",
         "rounding ties and out-of-range inputs"),
        ("QKeras float32 vs exact", f"{f32.get('mismatched_jets', 'n/a')} events differ", "float32 accumulation"),
    ]
    return rows


def results_rows(metrics: RunResult | dict) -> list[tuple[str, str, str]]:
    """(quantity, measured value, how it was measured) rows of the final table."""
    r = as_result(metrics)
    q, f, c, d = r.qat, r.float_twin, r.csim, r.data
    stress, f32 = c.get("stress", {}), c.get("qkeras_float32", {})
    if d.extra.get("level") == "event":
        return [*_event_rows(r), *_trigger_rows(r.trigger), *_hardware_rows(r.hls, "event (one network)"),
                ("Parameters (non-zero)", f"{r.model.parameters} ({r.model.nonzero_parameters})", "after pruning"),
                ("Input / output type", f"{d.input_type} / {r.model.output_type}", "derived from quantizers"),
                ("HLS project", str(r.hls.get("project_dir")), r.hls.get("backend", ""))]
    err = f" ± {100 * q.signal_efficiency_err:.2f}" if q.signal_efficiency_err is not None else ""
    return [
        ("Jets train / val / test", " / ".join(str(d.n_jets.get(k)) for k in ("train", "val", "test")), "split by event"),
        ("Signal fraction", _fmt(d.signal_fraction, percent=True), "all selected jets"),
        ("Float twin AUC", _fmt(f.auc if f else None), "test jets"),
        ("QAT AUC", _fmt(q.auc), "test jets, exact integer model"),
        ("C-sim AUC", _fmt(c.get("auc")), "test jets, hls4ml C-simulation"),
        *_flavour_rows(q, f),
        (f"Signal eff. @ {_fmt(q.target_background_efficiency, percent=True)} bkg",
         _fmt(q.signal_efficiency, percent=True) + err, "QAT, per jet"),
        ("Background rejection", _fmt(q.background_rejection, percent=True), "QAT, per jet"),
        ("C-sim mismatched jets", f"{c.get('mismatched_jets', 'n/a')} / {c.get('jets', 'n/a')}",
         f"max |diff| {c.get('max_abs_diff_lsb', 'n/a')} LSB vs exact integer model"),
        ("C-sim stress mismatches", f"{stress.get('mismatched_jets', 'n/a')} / {stress.get('jets', 'n/a')}",
         "rounding ties and out-of-range inputs"),
        ("QKeras float32 vs exact", f"{f32.get('mismatched_jets', 'n/a')} jets differ", "float32 accumulation"),
        *_trigger_rows(r.trigger),
        *_hardware_rows(r.hls),
        ("Parameters (non-zero)", f"{r.model.parameters} ({r.model.nonzero_parameters})", "after pruning"),
        ("Input / output type", f"{d.input_type} / {r.model.output_type}", "derived from quantizers"),
        ("HLS project", str(r.hls.get("project_dir")), r.hls.get("backend", "")),
    ]


def _flavour_rows(qat, float_twin) -> list[tuple[str, str, str]]:
    """b vs light and b vs c AUCs (QAT, float twin) per jet set, when the run has hadron-flavour labels."""
    rows = []
    for jets, aucs in (qat.extra.get("auc_by_flavour") or {}).items():
        twin = ((float_twin.extra.get("auc_by_flavour") or {}).get(jets, {}) if float_twin else {})
        where = jets.replace("_", " ")
        for pair in ("b_vs_light", "b_vs_c"):
            rows.append((f"{pair.replace('_', ' ')} AUC", f"{_fmt(aucs.get(pair))} (float {_fmt(twin.get(pair))})",
                         f"QAT, {where}"))
    return rows


def _trigger_rows(t: dict | None) -> list[tuple[str, str, str]]:
    """Per rate point: the best network seed and the best kinematic seed, quoted on the held-out half."""
    if not t or not t.get("enabled"):
        return []
    if "at_rate" not in t:  # a run written before the menu-style seeds
        return [("Trigger rate (older run)", hz_text(t["rate_hz"], t["rate_hz_err"]),
                 f"{t['method']} normalisation, test events")]
    if t.get("level") == "event":
        return _event_trigger_rows(t)
    rows = []
    for key, point in t["at_rate"].items():
        for kind in ("network", "kinematic"):
            q = point.get(kind)
            if not q:
                continue
            rows.append(_quoted_row(f"{kind.capitalize()} seed at {key} kHz", q,
                                    f"{q['seed']['description']}; n_eff_fired {q['n_eff_fired']:.0f} (held-out)"
                                    f"{_unresolved_note(q)}"))
        gain = point.get("gain_over_best_kinematic")
        if gain:
            rows.append((f"Network gain at {key} kHz", f"{100 * gain['value']:+.1f} ± {100 * gain['err']:.1f} points",
                         "paired error on the same signal events"))
    decision = t.get("decision_hls", {})
    if decision.get("csim_checked"):
        rows.append(("Accept bit (g++) vs Python", f"{decision['disagreements']} of {decision['events']} events differ",
                     "C-simulation of the seed's accept bit"))
    return rows


def _efficiency_at_rate(quote: dict) -> str:
    """``"96.9 % at 103.0 ± 3.9 kHz"`` for a quoted seed (an unresolved rate: its 68 % CL upper limit)."""
    return f"{100 * quote['signal_efficiency']:.1f} % at {rate_text(quote)}"


def _unresolved_note(quote: dict) -> str:
    """"; UNRESOLVED ..." for a rate the sample cannot resolve (empty otherwise)."""
    if quote.get("resolved", True):
        return ""
    return "; UNRESOLVED: the rate sample cannot resolve this rate, never 'met'"


def _quoted_row(label: str, quote: dict, detail: str) -> tuple[str, str, str]:
    """A results-table row for a seed quoted at a rate: (label, efficiency at rate, detail)."""
    return label, _efficiency_at_rate(quote), detail


def _gain_text(gain: dict | None) -> str:
    return "n/a" if not gain else f"{100 * gain['value']:+.1f} ± {100 * gain['err']:.1f}"


def _event_trigger_rows(t: dict) -> list[tuple[str, str, str]]:
    """Per rate: event network, GBDT reference, best kinematic seed, paired gains, n_eff_fired, no-lepton gain."""
    rows = []
    for key, point in t["at_rate"].items():
        net, ref, kin = point["event_network"], point.get("gbdt_reference"), point.get("kinematic")
        rows.append(_quoted_row(f"Event network at {key} kHz", net,
                                f"n_eff_fired {net['n_eff_fired']:.0f}; gain {_gain_text(net['gain_over_best_kinematic'])} "
                                f"points; {net['seed']['description']}{_unresolved_note(net)}"))
        if ref:
            rows.append(_quoted_row(f"GBDT reference at {key} kHz", ref,
                                    f"n_eff_fired {ref['n_eff_fired']:.0f}; gain {_gain_text(ref['gain_over_best_kinematic'])} "
                                    f"points; float, same inputs/events/weights{_unresolved_note(ref)}"))
        if kin:
            rows.append(_quoted_row(f"Best kinematic at {key} kHz", kin,
                                    f"n_eff_fired {kin['n_eff_fired']:.0f}; {kin['seed']['description']} (no preselection)"
                                    f"{_unresolved_note(kin)}"))
        nolep = point.get("no_lepton_jet")
        if nolep:
            rows.append((f"No-lepton-jet gain at {key} kHz", f"{_gain_text(nolep['gain_over_best_kinematic'])} points",
                         f"{nolep['events']} signal test events without a jet with chEmEF or muEF > 0.5"))
    decision = t.get("decision_hls") or {}
    if decision.get("csim_checked"):
        rows.append(("Accept bit (g++) vs Python", f"{decision['disagreements']} of {decision['events']} events differ",
                     "jet words -> Delta-phi, HT, preselection, hls4ml network, threshold; real + random events"))
    return rows


def _hardware_rows(hls: dict, unit: str = "jet") -> list[tuple[str, str, str]]:
    estimate, event, budget = hls.get("estimate"), hls.get("estimate_per_event"), hls.get("budget")
    if not estimate:
        return []
    how = f"estimate ({estimate['method']}), {hls.get('part')} @ {estimate['clock_period_ns']} ns"
    cal = estimate.get("calibration")  # a set network: LUT = model x factor fitted on yosys
    lut_how = how + (f"; LUT = model {cal['lut_model']} x {cal['lut_factor']} (calibrated on yosys)" if cal else "")
    rows = [
        (f"Latency per {unit}", f"{estimate['latency_cycles']} cycles = {estimate['latency_ns']:g} ns, II {estimate['ii']}", how),
        (f"LUT / FF / DSP / BRAM per {unit}", f"{estimate['lut']} / {estimate['ff']} / {estimate['dsp']} / {estimate['bram']}", lut_how),
    ]
    da = hls.get("estimate_da")
    if da:
        rows.append(("DA kernel (da4ml) + activations", f"{da['lut']} LUT-eq. ({da['kernel_cost']} kernel), {da['dsp']} DSP, "
                     f"~{da['latency_cycles']} cycles", f"estimate ({da['method']}); Latency-strategy row above for comparison"))
    if event and unit == "jet":
        total = event["total"]
        rows.append((f"Per event ({event['jets_per_event']} jets, {event['mode']})",
                     f"{total['lut']} LUT, {total['dsp']} DSP, {event['instances']} instance(s), "
                     f"II {event['ii']} vs required {event['required_ii']}", "estimate"))
    if budget:
        latency = budget["checks"]["latency_ns"]
        rows.append(("Latency budget", f"{'fits' if latency['fits'] else 'DOES NOT FIT'}: {latency['value']:g} of "
                     f"{latency['budget']:g} ns", "estimate vs hls.latency_budget_ns"))
    return rows


def results_table(metrics: RunResult | dict) -> str:
    """A plain-text table for the terminal: measured results, then the seed document's targets."""
    result = as_result(metrics)
    text = _text_table(results_rows(result), ("Quantity", "Measured", "How"))
    if (result.trigger or {}).get("enabled"):
        text += "\n\nSeed document targets (from measured values; sample: generated test events)\n"
        text += _text_table(seed_target_rows(result.to_json()), ("Quantity", "Target", "Measured", "Status"))
    return text


def _text_table(rows, header) -> str:
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def _trigger_section(result: RunResult) -> str:
    t = result.trigger
    if not t or not t.get("enabled"):
        return ""

    targets = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in seed_target_rows(result.to_json()))
    lines = trigger_text(t)
    figures = ["rate_vs_efficiency.png", "event_efficiency_vs_ht.png", "efficiency_vs_pt.png",
               "event_efficiency_vs_leading_pt.png"]
    if t.get("level") == "event":  # one score per event: score distributions instead of per-jet efficiencies
        figures = ["rate_vs_efficiency.png", "event_scores.png", "event_efficiency_vs_ht.png",
                   "event_efficiency_vs_leading_pt.png"]
    plots = "\n".join(f"![{name[:-4].replace('_', ' ')}](plots/{name})" for name in figures)
    return f"""## Trigger

Menu-style seeds (the network's score inside jet-multiplicity and HT seeds, against the same
families without the score) are chosen on the calibration half of the rate sample and quoted on
the held-out half; efficiencies are signal test events with Clopper-Pearson intervals. 100 kHz
is the whole Run-2 L1 output; a single seed in a real menu gets a few kHz. Particle-level jets:
no detector response, no pileup (efficiency curves are steps, not turn-ons).

```
{lines}
```

| Target (seed document) | Target | Measured | Status |
|---|---|---|---|
{targets}

{plots}
"""


def warnings_text(metrics: RunResult | dict, prefix: str = "WARNING: ") -> str:
    """The run's warnings (``metrics.json`` → ``warnings``), one line each with ``prefix``, then a newline."""
    warnings = as_result(metrics).extra.get("warnings") or []
    return "".join(f"{prefix}{w}\n" for w in warnings)


def render_report(config: RunConfig, metrics: RunResult | dict) -> str:
    """Markdown report of a run."""
    result = as_result(metrics)
    rows = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in results_rows(result))
    layers = "\n".join(f"| {layer['name']} | {layer['accum_type']} | {layer['activation_type'] or '(output)'} |"
                       for layer in result.model.layers)
    warned = "\n" + warnings_text(result, "- **Warning:** ") if warnings_text(result) else ""
    return f"""# qtrigger run `{result.run}`

Wall time: {result.wall_seconds} s. Config: `config.resolved.yaml`; provenance: `provenance.json`.
{warned}
## Results

| Quantity | Measured | How |
|---|---|---|
{rows}

{_working_point_text(config, result)} The C-simulation is compared with the exact integer
emulation of the quantized network as integer codes of the output type; QKeras' own
float32 evaluation is compared with the same reference separately.

{_trigger_section(result)}
## Fixed-point types (derived from the QKeras quantizers and trained weights)

Input: `{result.data.input_type}`; feature shifts (value = code · 2^-shift):
`{result.data.shifts}`

| Layer | Accumulator / result | Activation |
|---|---|---|
{layers}

## Plots

![ROC](plots/roc.png)
![Scores](plots/scores.png)
![Training](plots/training.png)
![Precision profile](plots/precision_profile.png)
"""


def _working_point_text(config: RunConfig, result: RunResult) -> str:
    if result.data.extra.get("level") == "event":
        return ("Event-level network: no per-jet working point (its seeds are in the trigger section); rows are "
                "events.")
    return (f"Working point: the score threshold that keeps {_fmt(config.trigger.background_efficiency, percent=True)} "
            "of\nbackground test jets (per jet).")


def trigger_text(t: dict) -> str:
    """The trigger study for the terminal: per rate point the best network and kinematic seeds, warnings."""

    return "\n".join(trigger_summary_lines(t))


def evaluation_text(result: dict) -> str:
    """A few lines for the terminal: what ``evaluate --data`` measured, warnings first."""
    qat = result["qat"]
    lines = [f"WARNING: {w}" for w in result.get("warnings", [])]
    rows = "events" if result.get("level") == "event" else "jets"
    lines.append(f"run {result['run']}: {result['n_jets']} jets ({result['n_signal_jets']} signal) in {result['n_events']} events"
                 + (f" (first {result['max_events']} events per sample)" if result.get("max_events") else ""))
    lines.append(f"QAT AUC: {qat['auc']:.4f}" if qat.get("auc") is not None else f"QAT AUC: n/a ({qat['auc_note']})")
    if "signal_efficiency" in qat:
        lines.append(f"at the run's threshold {qat['threshold']:g}: signal efficiency {100 * qat['signal_efficiency']:.1f} %, "
                     f"background rejection {100 * qat['background_rejection']:.2f} %")
    if "csim" in result:
        c = result["csim"]
        lines.append(f"C-simulation: {c['mismatched_jets']} of {c['jets']} {rows} differ from the exact model "
                     f"(max {c['max_abs_diff_lsb']} LSB)")
    return "\n".join(lines)
