"""The trigger study of one run: menu-style seeds tuned on one half of a rate sample, quoted on the other.

Events: the *rate sample* is ``trigger.rate_files`` (a background read for rates only, all its
events) or else the test events of the role-background samples. It is split by event (seeded,
``trigger.rate_split_seed``) into a calibration half, where every seed family's grid is
searched and tuned to each target rate, and a held-out half, where rate, error, ``n_eff_fired``
and every verdict are computed. Signal efficiencies are chosen on the validation signal
events (the test events when no validation scores exist) and quoted on the signal test events.
The returned :class:`TriggerResult` is what metrics.json, the report and the CLI read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from qtrigger.data.crossing import rate_sample_info
from qtrigger.errors import QTriggerError
from qtrigger.inputs.seed_jets import NO_CODE, SeedJets, jet_words, leading_jet_pt, leading_rank, min_jet_pt
from qtrigger.trigger.efficiency import efficiency_of
from qtrigger.trigger.menu import (
    DECISION_CHECK_EVENTS,
    FLOAT_CODE_SCALE,
    RatePointResult,
    TriggerResult,
    _bias_warning,
    _Events,
    _facts,
    _jets_of,
    _sample_roles,
    _take,
    check_rate_files,
    khz_key,
    menu_points,
    offline_selection,
    read_rate_sample,
    scan_summary,
    tag_reference_jets,
)
from qtrigger.trigger.plots import plot_jet_efficiency, study_plots
from qtrigger.trigger.rates import split_events
from qtrigger.trigger.table_rates import sample_rate
from qtrigger.trigger.references import bdt_reference
from qtrigger.trigger.seed_decision import check_seed_csim, write_seed_hls
from qtrigger.trigger.seeds import (
    Seed,
    best_rows,
    score_grid,
    search_family,
    tag_grid,
)
from qtrigger.trigger.working_points import (
    SignalEvents,
    bias_region,
    quote,
    rate_at_run_thresholds,
    run_threshold_extra,
)


def _rate_sample(config, prepared, score_fn, background):
    """(table, per-jet codes or None, network inputs or None, events mask, description)."""
    files = check_rate_files(config)
    if files:
        if score_fn is None:
            raise QTriggerError("trigger.rate_files needs the network to score the rate sample; "
                                "call the study with score_fn")
        table, x = read_rate_sample(config, prepared, files)
        return table, np.asarray(score_fn(x), dtype=np.int64), x, np.ones(table.n_events, bool), \
            f"trigger.rate_files ({', '.join(files)}), all {table.n_events:,} events"
    table = prepared.table
    events = np.isin(table.event_sample, background) & (prepared.split.event_part == 2)
    names = ", ".join(table.samples[i] for i in background)
    return table, None, None, events, f"test events of the background sample(s) {names}: {int(events.sum()):,}"


def trigger_study(config, prepared, jet_codes: np.ndarray, score_type, run_dir: Path, hls_dir: Path | None,
                  project_name: str | None, score_fn=None, run_trigger: dict | None = None) -> TriggerResult:
    """Seeds tuned on the calibration half of the rate sample and quoted on held-out events.

    ``jet_codes``: integer score codes of the test jets (``prepared.split.test``);
    ``score_type``: their FixedType (None for float scores on ``FLOAT_CODE_SCALE`` codes);
    ``score_fn(inputs) -> codes``: scores other jets (validation, rate sample) with the same
    network (exact integer model); without it the seed is chosen on test signal events and
    ``trigger.rate_files`` cannot be used. ``run_trigger``: a finished run's ``trigger`` metrics,
    whose seeds are then also applied unchanged to every event of this rate sample.
    """
    t, table, split = config.trigger, prepared.table, prepared.split
    signal, background = _sample_roles(config, table)
    if not signal or not (background or t.rate_files):
        return TriggerResult(False, "no sample has role signal, or no background (role background or "
                                    "trigger.rate_files); trigger study skipped")
    words = jet_words(config)
    codes = np.full(table.n_jets, NO_CODE, dtype=np.int64)
    codes[split.test] = jet_codes
    have_val = score_fn is not None and bool(split.val.any())
    if have_val:
        codes[split.val] = score_fn(prepared.inputs[split.val])
    rate_table, rate_codes, rate_x, rate_events, rate_source = _rate_sample(config, prepared, score_fn, background)
    if rate_codes is None:
        rate_codes = codes
    rate_files = sorted({rate_table.files[f] for f in np.unique(rate_table.event_file[rate_events])})
    info = rate_sample_info(rate_files, t.normalisation)
    calibration_events, held_out_events = split_events(rate_events, t.rate_split_seed)
    kw = dict(tree=config.data.tree, lumi_cm2s=t.lumi_cm2s, n_bunches=t.n_bunches, min_n_eff=t.min_n_eff)
    calibration = sample_rate(info, t.normalisation, calibration_events, rate_table, **kw)
    held_out = sample_rate(info, t.normalisation, held_out_events, rate_table, **kw)
    leading = leading_jet_pt(rate_table.extra["pt"], rate_table.event, rate_table.n_events)
    bias = bias_region(info, leading, t.bias_factor)

    is_signal = np.isin(table.event_sample, signal)
    quoted = is_signal & (split.event_part == 2)
    selection = is_signal & (split.event_part == (1 if have_val else 2))
    offline = offline_selection(table, t.offline_min_jets, t.offline_jet_pt)
    main = _jets_of(table, codes, config, words)
    rate_jets = main if rate_table is table else _jets_of(rate_table, rate_codes, config, words)
    signal_events = SignalEvents(main, quoted, offline, f"signal test events ({int(quoted.sum()):,})",
                                 f">= {t.offline_min_jets} jets with pT >= {t.offline_jet_pt:g} GeV")
    reference = tag_reference_jets(config, table, prepared.labels, selection)
    ev = _Events(main, rate_jets, calibration, held_out, selection, signal_events, bias, codes[reference])
    targets = [t.target_rate_hz, *[r for r in t.extra_rates_hz if r != t.target_rate_hz]]
    points, rows = menu_points(ev, config, targets)
    score_lsb = score_type.lsb if score_type is not None else 1.0 / FLOAT_CODE_SCALE

    result = TriggerResult(True, words=words, score_lsb=score_lsb, points=points)
    result.facts = _facts(config, info, rate_source, calibration, held_out, signal_events, selection, have_val, bias)
    result.scan = scan_summary(rows, words, score_lsb)
    result.bias_warning = _bias_warning(points, t.bias_fraction_max, bias)
    result.per_jet = _per_jet(config, table, points[0].network.seed, main, rate_jets, quoted, held_out_events,
                              prepared.labels)
    if t.bdt and config.labels.mode == "binary":
        result.bdt = _bdt(config, prepared, ev, rate_table, rate_x, targets[:1], points[0].network.seed)
    if hls_dir is not None and project_name and score_type is not None:
        result.decision_hls = _decision_hls(hls_dir, project_name, points[0].network.seed, words, score_type, ev)
    if run_trigger is not None:
        everything = sample_rate(info, t.normalisation, rate_events, rate_table, **kw)
        checked = rate_at_run_thresholds(run_trigger, rate_jets, everything)
        result.extra = run_threshold_extra(checked, khz_key(targets[0]))
    if run_dir is not None:
        study_plots(Path(run_dir) / "plots", ev, points[0], words, score_lsb)
        _jet_plots(Path(run_dir) / "plots", config, table, main, points[0], quoted, prepared.labels, words)
    return result


def _slot_tags(config, table, main: SeedJets, seed: Seed) -> np.ndarray:
    """Per jet of the table: it sits in a scored seed slot and its score passes the seed's tag threshold."""
    tagged = main.valid & (main.score >= seed.score_code)
    rank = leading_rank(table.event)
    in_slot = (rank < main.n_scored) & (table.extra["pt"] >= min_jet_pt(config))
    out = np.zeros(table.n_jets, bool)
    out[in_slot] = tagged[table.event[in_slot], rank[in_slot]]
    return out


def _per_jet(config, table, seed: Seed, main, rate_jets, quoted, held_out_events, labels) -> dict:
    """Per-jet tag efficiency of signal jets (test) and rejection of background jets (held-out), unweighted."""
    if seed.score_code is None:
        return {}
    tagged_rate = rate_jets.valid & (rate_jets.score >= seed.score_code)
    tagged_rate[:, rate_jets.n_scored:] = False
    is_signal_jet = config.labels.signal_mask(labels) & quoted[table.event]
    signal_jet = efficiency_of(_slot_tags(config, table, main, seed)[is_signal_jet])
    scored_slots = rate_jets.valid[held_out_events][:, :rate_jets.n_scored]
    background = efficiency_of(tagged_rate[held_out_events][:, :rate_jets.n_scored][scored_slots])
    return {"signal_jet_efficiency": signal_jet.value, "signal_jet_efficiency_err": signal_jet.err,
            "background_rejection": 1.0 - background.value, "background_rejection_err": background.err,
            "per_jet_note": "unweighted jets in the scored slots; signal: signal-labelled test jets; background: "
                            "jets of the held-out rate events"}


def _jet_plots(plots: Path, config, table, main: SeedJets, point: RatePointResult, quoted, labels, words) -> None:
    """Per-jet efficiency vs pT and |eta| of signal test jets: network tag vs the single-jet pT cut."""

    seed, cut = point.network.seed, point.baselines.get("single_jet")
    if seed.score_code is None or cut is None:
        return
    signal_jet = config.labels.signal_mask(labels) & quoted[table.event]
    pt, eta = table.extra["pt"][signal_jet], np.abs(table.extra["eta"][signal_jet])
    passes = {"network tag": _slot_tags(config, table, main, seed)[signal_jet],
              f"single jet pT >= {words.gev(cut.seed.jet_pt_code):g} GeV": words.pt_code(pt) >= cut.seed.jet_pt_code}
    plot_jet_efficiency(plots / "efficiency_vs_pt.png", pt, passes, np.array([20, 30, 40, 60, 80, 100, 150, 200, 300, 500]))
    plot_jet_efficiency(plots / "efficiency_vs_eta.png", eta, passes, np.linspace(0, 2.5, 11), xlabel=r"jet $|\eta|$")


def _bdt(config, prepared, ev: _Events, rate_table, rate_x, targets, network_seed: Seed) -> dict:
    """The network seed's shape with a BDT (same inputs) in place of the network score, at the main target.

    A constituent network's (jets, slots, fields) inputs reach the BDT flattened, slot by slot.
    """

    split, y = prepared.split, prepared.labels
    x = prepared.inputs.reshape(len(prepared.inputs), -1)
    if rate_x is not None:
        rate_x = rate_x.reshape(len(rate_x), -1)
    bdt = bdt_reference(x[split.train], y[split.train], x[split.test], y[split.test], seed=config.training.seed)
    codes = np.full(prepared.table.n_jets, NO_CODE, dtype=np.int64)
    score = (lambda inputs: np.rint(bdt.model.predict_proba(np.asarray(inputs))[:, 1] * FLOAT_CODE_SCALE)
             .astype(np.int64))
    codes[split.test] = np.rint(np.asarray(bdt.scores) * FLOAT_CODE_SCALE).astype(np.int64)
    if split.val.any():
        codes[split.val] = score(x[split.val])
    words = jet_words(config)
    main = _jets_of(prepared.table, codes, config, words)
    rate = main if rate_x is None else _jets_of(rate_table, score(rate_x), config, words)
    ev_bdt = replace(ev, main=main, rate=rate, signal=replace(ev.signal, jets=main))
    shape = network_seed  # the network seed's family and jet requirements, with the BDT score re-searched
    scored = np.r_[rate.score[ev.calibration.events].ravel(), main.score[ev.selection].ravel()]
    if shape.family == "ht_tagged":
        outer = [replace(shape, score_code=t, ht_code=None) for t in score_grid(scored, config.trigger.grid_score_steps)]
    elif shape.family == "ht_ntag":  # the BDT's tag grid on the same reference jets
        reference = codes[tag_reference_jets(config, prepared.table, y, ev.selection)]
        outer = [replace(shape, score_code=t, ht_code=None)
                 for t in tag_grid(reference, config.trigger.grid_tag_efficiencies)]
    else:
        outer = [replace(shape, score_code=None)]
    rows = search_family(shape.family, outer, rate, ev.calibration, main, ev.selection, targets)
    best = best_rows(rows, (shape.family,))[targets[0]]
    net = quote(best, "bdt", rate, ev.held_out, ev_bdt.signal, ev.bias, ev.calibration)
    return {"auc": bdt.auc, "seed": net.seed.describe(words, 1.0 / FLOAT_CODE_SCALE), **net.rate.as_dict(),
            "signal_efficiency": net.efficiency.value, "signal_efficiency_err": net.efficiency.err}


def _decision_hls(hls_dir, project_name, seed: Seed, words, score_type, ev: _Events) -> dict:
    n_slots, n_scored = ev.main.pt.shape[1], ev.main.n_scored
    write_seed_hls(hls_dir, project_name, seed, words, score_type, n_slots, n_scored)
    rows_signal = np.flatnonzero(ev.signal.events)[:DECISION_CHECK_EVENTS]
    rows_rate = np.flatnonzero(ev.held_out.events)[:DECISION_CHECK_EVENTS]
    jets = _take(ev.main, rows_signal)
    other = _take(ev.rate, rows_rate)
    both = SeedJets(np.r_[jets.pt, other.pt], np.r_[jets.score, other.score], np.r_[jets.valid, other.valid],
                    np.r_[jets.ht, other.ht], jets.n_scored)
    try:
        check = check_seed_csim(hls_dir, project_name, seed, words, score_type, n_slots, n_scored, jets=both)
    except QTriggerError as err:
        return {"written": True, "csim_checked": False, "note": str(err), "seed": seed.describe(words, score_type.lsb)}
    return {"written": True, "csim_checked": True, "header": f"{project_name}_seed.h",
            "seed": seed.describe(words, score_type.lsb), **check}


def study_from_run(config, prepared, network, exact_codes, artefacts, run_dir, hls_dir, project_name,
                   score_of) -> TriggerResult:
    """The study on a run's chosen score (``trigger.score``: csim, qat or float twin).

    ``score_of(config, codes)`` turns network output codes into the trigger score
    (``qtrigger.runs.pipeline.trigger_score``); other jets are scored with the exact integer model.
    """
    t = config.trigger
    if t.score == "float" and "float twin" in artefacts["scores"]:
        codes = np.rint(artefacts["scores"]["float twin"] * FLOAT_CODE_SCALE).astype(np.int64)
        return trigger_study(config, prepared, codes, None, run_dir, None, None)
    codes = artefacts["csim_codes"] if t.score == "csim" and "csim_codes" in artefacts else exact_codes
    out_type = network.output_type
    score_type = out_type if config.labels.mode == "binary" or not config.labels.score.minus else \
        type(out_type)(out_type.width + 1, out_type.integer + 1, True)  # a difference of two codes of one type

    def score_fn(inputs):
        return np.asarray(score_of(config, network.forward_codes(inputs)), dtype=np.int64)

    return trigger_study(config, prepared, np.asarray(score_of(config, codes), dtype=np.int64), score_type, run_dir,
                         hls_dir, project_name, score_fn=score_fn)
