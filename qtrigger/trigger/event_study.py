"""The trigger study of an event-level network: "preselection and event score >= t" against kinematic seeds.

The same machinery as per-jet runs (:mod:`qtrigger.trigger.study`): the rate sample is split by
event into a calibration half (every seed tuned there) and a held-out half (every quoted number);
the ``event_network`` seed's threshold is chosen on the signal validation events. The kinematic
baselines (``jets``, ``ht``) are searched *without* the preselection. Efficiencies are per *all*
signal test events (preselection losses counted). Beside the network at every rate point:

- ``event_network``: the network seed's rate, error, n_eff_fired, efficiency, seed, paired gain;
- ``gbdt_reference``: a float gradient-boosted-tree reference (fixed settings, same input codes,
  training events, weights and preselection), tuned and quoted the same way;
- ``no_lepton_jet``: the gains on signal test events without a jet with chEmEF or muEF > 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qtrigger.data.crossing import rate_sample_info
from qtrigger.errors import QTriggerError
from qtrigger.inputs.event import check_input_words
from qtrigger.inputs.seed_jets import NO_CODE, SeedJets, jet_words
from qtrigger.models.train import balanced
from qtrigger.plotting import label_simulation, save, style
from qtrigger.trigger.efficiency import efficiency_of, paired_gain
from qtrigger.trigger.event_decision import check_event_seed_csim
from qtrigger.trigger.event_rtl import DECISION_EVENTS_FILE, save_decision_events
from qtrigger.trigger.menu import (
    FLOAT_CODE_SCALE,
    TriggerResult,
    _bias_warning,
    _Events,
    _facts,
    check_rate_files,
    grid_spec,
    khz_key,
    menu_points,
    offline_selection,
    scan_summary,
)
from qtrigger.trigger.plots import _seed_curve, plot_rate_vs_efficiency, study_plots
from qtrigger.trigger.preselection import check_rate_bins, preselection_seed
from qtrigger.trigger.rates import split_events
from qtrigger.trigger.table_rates import sample_rate
from qtrigger.trigger.references import bdt_reference
from qtrigger.trigger.seeds import best_rows, outer_grid, search_family
from qtrigger.trigger.working_points import (
    SeedQuote,
    SignalEvents,
    bias_region,
    quote,
    rate_at_run_thresholds,
    run_threshold_extra,
)

PER_JET_NOTE = ("per-jet metrics left out: the event-level network scores events, not jets; its quality is the "
                "trigger table (held-out rates, efficiencies per signal test event, paired gains)")


def _gain_dict(gain) -> dict | None:
    if gain is None:
        return None
    return {"value": gain.value, "err": gain.err, "gained": gain.gained, "lost": gain.lost, "n": gain.n,
            "method": "paired (discordant events)"}


def _quote_dict(q, words, score_lsb, gain) -> dict:
    d = q.as_dict(words, score_lsb)
    return {"rate_hz": d["rate_hz"], "rate_hz_err": d["rate_hz_err"], "n_eff_fired": d["n_eff_fired"],
            "n_fired": d["n_fired"], "resolved": d["resolved"], "min_n_eff": d["min_n_eff"],
            "rate_upper_limit_hz": d["rate_upper_limit_hz"], "signal_efficiency": d["signal_efficiency"],
            "signal_efficiency_err": d["signal_efficiency_err"],
            "signal_efficiency_interval": d["signal_efficiency_interval"], "seed": d["seed"],
            "calibration": d["calibration"], "gain_over_best_kinematic": _gain_dict(gain)}


def scored_rate_sample(config, data, score_fn):
    """(table, SeedJets with event scores, network inputs, events mask, description, slot words) of the rate sample."""
    files = check_rate_files(config)
    if files:
        table = data.spec.read(config, {"rate": files})
        built = data.spec.build(table)
        check_input_words(built, f"rate sample events ({len(files)} files)")
        x = data.preprocessor.transform(built.codes)
        return (table, built.jets.with_event_score(score_fn(x)), x, np.ones(table.n_events, bool),
                f"trigger.rate_files ({', '.join(files)}), all {table.n_events:,} events", built.slot_words)
    events = ~data.is_signal & (data.split.event_part == 2)
    return (data.table, None, data.inputs, events,
            f"test events of the background sample(s): {int(events.sum()):,}", data.built.slot_words)


def event_trigger_study(config, data, score_fn, score_type, run_dir: Path | None,
                        run_trigger: dict | None = None, gbdt: bool = True, network=None, hls_dir=None,
                        project_name: str | None = None, keep_decision_events: bool = False,
                        rate_sample: tuple | None = None) -> TriggerResult:
    """Seeds tuned on the calibration half of the rate sample and quoted on held-out events (module docstring).

    ``data``: :class:`~qtrigger.levels.event.EventData`; ``score_fn(inputs) -> codes`` scores
    events with the exact integer network; ``score_type`` is its output FixedType.
    ``run_trigger``: a finished run's ``trigger`` metrics whose seeds are applied unchanged to
    every event of this rate sample (``rate_at_run_threshold``, with pulls). With ``network``,
    ``hls_dir`` and ``project_name`` the first target's seed is written as accept-bit C++ around
    the hls4ml network and compared with Python (``decision_hls``). ``keep_decision_events`` writes the
    events of that check to ``<run_dir>/decision_events.npz`` (the event seed's RTL streams them).
    ``rate_sample``: :func:`scored_rate_sample`'s answer when already read (one read for several signal samples).
    """
    t, table, split = config.trigger, data.table, data.split
    words = jet_words(config)
    main = data.built.jets.with_event_score(score_fn(data.inputs))
    rate_sample = rate_sample or scored_rate_sample(config, data, score_fn)
    rate_table, rate_jets, rate_x, rate_events, rate_source, rate_words = rate_sample
    rate_jets = main if rate_jets is None else rate_jets
    rate_files = sorted({rate_table.files[f] for f in np.unique(rate_table.event_file[rate_events])})
    info = rate_sample_info(rate_files, t.normalisation)
    check_rate_bins(config, info)
    calibration_events, held_out_events = split_events(rate_events, t.rate_split_seed)
    kw = dict(tree=config.data.tree, lumi_cm2s=t.lumi_cm2s, n_bunches=t.n_bunches, min_n_eff=t.min_n_eff)
    calibration = sample_rate(info, t.normalisation, calibration_events, rate_table, **kw)
    held_out = sample_rate(info, t.normalisation, held_out_events, rate_table, **kw)
    leading = np.where(rate_jets.valid[:, 0], rate_jets.pt[:, 0] * words.pt_lsb_gev, np.nan)
    bias = bias_region(info, leading, t.bias_factor)

    have_val = bool((split.event_part == 1).any())
    quoted = data.is_signal & (split.event_part == 2)
    selection = data.is_signal & (split.event_part == (1 if have_val else 2))
    offline = offline_selection(table, t.offline_min_jets, t.offline_jet_pt)
    signal_events = SignalEvents(main, quoted, offline, f"signal test events ({int(quoted.sum()):,}, all: "
                                 "preselection losses counted)",
                                 f">= {t.offline_min_jets} jets with pT >= {t.offline_jet_pt:g} GeV")
    ev = _Events(main, rate_jets, calibration, held_out, selection, signal_events, bias)
    targets = [t.target_rate_hz, *[r for r in t.extra_rates_hz if r != t.target_rate_hz]]
    points, rows = menu_points(ev, config, targets)
    score_lsb = score_type.lsb

    reference = _gbdt_quotes(config, data, ev, rate_x, targets) if gbdt else {}
    lepton = data.built.lepton_like
    no_lepton = quoted & ~lepton if lepton is not None else None
    for point in points:
        net, kin = point.network, point.kinematic
        point.extra["event_network"] = _quote_dict(net, words, score_lsb, point.gain)
        if point.target_rate_hz in reference:
            ref = reference[point.target_rate_hz]
            ref_fires = ref.quote.seed.fires(ref.signal_jets)[quoted]
            gain = paired_gain(ref_fires, kin.seed.fires(main)[quoted]) if kin else None
            d = point.extra["gbdt_reference"] = _quote_dict(ref.quote, words, 1.0 / FLOAT_CODE_SCALE, gain)
            d.update(auc_preselected_test=ref.auc, n_iter=ref.n_iter, settings="HistGradientBoostingClassifier "
                     "max_iter 300, learning rate 0.1, early stopping; per-event sample_weight as the network")
            d["network_minus_reference"] = _gain_dict(paired_gain(net.seed.fires(main)[quoted], ref_fires))
        if no_lepton is not None and kin is not None:
            net_fires, kin_fires = net.seed.fires(main)[no_lepton], kin.seed.fires(main)[no_lepton]
            point.extra["no_lepton_jet"] = {
                "events": int(no_lepton.sum()), "definition": "signal test events without a selected jet with "
                                                              "chEmEF > 0.5 or muEF > 0.5",
                "event_network_efficiency": efficiency_of(net_fires).value,
                "kinematic_efficiency": efficiency_of(kin_fires).value,
                "gain_over_best_kinematic": _gain_dict(paired_gain(net_fires, kin_fires))}

    result = TriggerResult(True, words=words, score_lsb=score_lsb, points=points)
    result.facts = _facts(config, info, rate_source, calibration, held_out, signal_events, selection, have_val, bias)
    result.facts["level"] = "event"
    result.facts["preselection"] = _preselection_facts(config, words, main, rate_jets, quoted, held_out,
                                                       preselection_seed(config, words))
    if lepton is not None:
        result.facts["lepton_like_signal_fraction"] = float(lepton[quoted].mean()) if quoted.any() else None
    result.scan = scan_summary(rows, words, score_lsb)
    result.bias_warning = _bias_warning(points, t.bias_fraction_max, bias)
    result.per_jet = {"per_jet_note": PER_JET_NOTE}
    decision_sets = _decision_sets({"signal test events": (main, data.built.slot_words, quoted),
                                    "held-out rate events": (rate_jets, rate_words, held_out_events)})
    if keep_decision_events and run_dir is not None:
        save_decision_events(Path(run_dir) / DECISION_EVENTS_FILE, decision_sets)
    if network is not None and hls_dir is not None and project_name:
        result.decision_hls = _decision_hls(hls_dir, project_name, points[0].network.seed, data, network,
                                            list(decision_sets.values()), words, score_type)
    if run_trigger is not None:
        everything = sample_rate(info, t.normalisation, rate_events, rate_table, **kw)
        checked = rate_at_run_thresholds(run_trigger, rate_jets, everything)
        result.extra.update(run_threshold_extra(checked, khz_key(targets[0])))
    if run_dir is not None:
        _plots(Path(run_dir) / "plots", ev, points[0], reference.get(targets[0]), words, score_lsb)
    return result


DECISION_CHECK_EVENTS = 20_000


def _decision_sets(sets: dict) -> dict:
    """name → (SeedJets, slot words) of up to DECISION_CHECK_EVENTS events of each (jets, words, mask)."""
    out = {}
    for name, (jets, slot_words, mask) in sets.items():
        rows = np.flatnonzero(mask)[:DECISION_CHECK_EVENTS]
        out[name] = (jets.take(rows), slot_words[rows])
    return out


def _decision_hls(hls_dir, project_name, seed, data, network, real, words, score_type) -> dict:
    """The event_network accept bit (jet words, Delta-phi, HT, preselection, hls4ml network) in g++ vs Python."""

    try:
        check = check_event_seed_csim(hls_dir, project_name, seed, data.spec, data.preprocessor, network, real,
                                      n_random=DECISION_CHECK_EVENTS, rng_seed=0)
    except QTriggerError as err:
        return {"written": True, "csim_checked": False, "note": str(err), "seed": seed.describe(words, score_type.lsb)}
    return {"written": True, "csim_checked": True, "seed": seed.describe(words, score_type.lsb),
            "checked_on": f"up to {DECISION_CHECK_EVENTS:,} signal test and {DECISION_CHECK_EVENTS:,} held-out rate "
                          f"events plus {DECISION_CHECK_EVENTS:,} random events at the word limits and thresholds",
            **check}


def _preselection_facts(config, words, main, rate_jets, quoted, held_out, seed) -> dict:
    if seed is None:
        return {"description": "none", "signal_efficiency": 1.0}
    fires = seed.fires(main)[quoted]
    eff = efficiency_of(fires)
    rate = held_out.of(seed.fires(rate_jets))
    return {"description": seed.describe(words), "signal_efficiency": eff.value, "signal_efficiency_err": eff.err,
            "signal_events": int(eff.total), "held_out_rate_hz": rate.rate_hz, "held_out_rate_hz_err": rate.rate_err_hz,
            "held_out_n_eff_fired": rate.n_eff_fired,
            "applied_to": "training, validation, test, calibration and held-out events (the event_network seed); "
                          "not to the kinematic baselines"}


@dataclass(frozen=True)
class ReferenceQuote:
    """The GBDT reference's quote with the event scores it was made on (signal and rate events)."""

    quote: SeedQuote
    signal_jets: SeedJets
    rate_jets: SeedJets
    auc: float | None
    n_iter: int


def _gbdt_quotes(config, data, ev, rate_x, targets) -> dict[float, ReferenceQuote]:
    """The float GBDT reference seed per target: same inputs, training events, weights and preselection."""

    split, x, y = data.split, data.inputs, data.labels
    w = balanced(data.weights[split.train], y[split.train], 2)
    test = split.test & data.preselected
    bdt = bdt_reference(x[split.train], y[split.train], x[test], y[test], seed=config.training.seed, sample_weight=w)

    def codes(inputs):
        return np.rint(bdt.model.decision_function(np.asarray(inputs)) * FLOAT_CODE_SCALE).astype(np.int64)

    main = ev.main.with_event_score(codes(x))
    rate = main if ev.rate is ev.main else ev.rate.with_event_score(codes(rate_x))
    outer = outer_grid("event_network", grid_spec(config), jet_words(config), 0, main.pt.shape[1], [])
    rows = search_family("event_network", outer, rate, ev.calibration, main, ev.selection, targets)
    signal = replace(ev.signal, jets=main)
    return {target: ReferenceQuote(quote(row, "gbdt_reference", rate, ev.held_out, signal, ev.bias, ev.calibration),
                                   main, rate, bdt.auc, bdt.n_iter)
            for target, row in best_rows(rows, ("event_network",)).items()}


def _plots(directory: Path, ev, point, reference: ReferenceQuote | None, words, score_lsb) -> None:
    """Rate vs efficiency (held-out) for the event network, the GBDT reference and the best kinematic seed;
    the event-score distributions; efficiency vs leading-jet pT and HT."""

    study_plots(directory, ev, point, words, score_lsb)
    curves = {"event network: " + point.network.seed.describe(words, score_lsb):
              _seed_curve(point.network.seed, ev.rate, ev.held_out, ev.main, ev.signal.events)}
    if reference is not None:
        curves["GBDT reference (float), same inputs and preselection"] = _seed_curve(
            reference.quote.seed, reference.rate_jets, ev.held_out, reference.signal_jets, ev.signal.events)
    if point.kinematic is not None:
        curves["best kinematic: " + point.kinematic.seed.describe(words)] = _seed_curve(
            point.kinematic.seed, ev.rate, ev.held_out, ev.main, ev.signal.events)
    plot_rate_vs_efficiency(directory / "rate_vs_efficiency.png", curves, point.target_rate_hz,
                            "held-out rate half; efficiency per signal test event")
    plot_score_distributions(directory / "event_scores.png", ev, point.network.seed, score_lsb)


def plot_score_distributions(path: Path, ev, seed, score_lsb: float) -> Path:
    """Event-score distributions of preselected signal test events and held-out rate events (weighted)."""

    plt = style()
    fig, ax = plt.subplots(figsize=(9, 6))
    sig_keys = seed.keys(ev.main)[ev.signal.events]
    rate_keys = seed.keys(ev.rate)[ev.held_out.events]
    sig = sig_keys[sig_keys != NO_CODE] * score_lsb
    keep = rate_keys != NO_CODE
    bkg, w = rate_keys[keep] * score_lsb, ev.held_out.weight[keep]
    both = np.r_[sig, bkg]
    bins = np.linspace(both.min(), both.max(), 60) if len(both) > 1 else 10
    ax.hist(sig, bins=bins, density=True, histtype="step", lw=2, label="signal test events (preselected)")
    if len(bkg) and w.sum() > 0:
        ax.hist(bkg, bins=bins, weights=w, density=True, histtype="step", lw=2,
                label="held-out rate events (preselected, weighted)")
    for threshold in (seed.score_code,):
        if threshold is not None:
            ax.axvline(threshold * score_lsb, color="grey", ls="--", label="threshold at the first target rate")
    ax.set_yscale("log")
    ax.set_xlabel("event score (network logit)")
    ax.set_ylabel("normalised")
    ax.legend(fontsize=11)
    label_simulation(ax)
    save(fig, path)
    return path
