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

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.samples import read_sample_info
from qtrigger.trigger.efficiency import PairedGain, efficiency_of, paired_gain
from qtrigger.trigger.events import NO_CODE, JetWords, SeedJets, leading_jet_pt, leading_rank, seed_jets
from qtrigger.trigger.rates import WeightedRate, split_events, weighted_rate
from qtrigger.trigger.seeds import (
    KINEMATIC_FAMILIES,
    NETWORK_FAMILIES,
    GridSpec,
    ScanRow,
    Seed,
    best_rows,
    outer_grid,
    score_grid,
    search_family,
    tag_grid,
)
from qtrigger.trigger.working_points import (
    BiasRegion,
    SeedQuote,
    SignalEvents,
    bias_region,
    rate_at_run_thresholds,
    efficiency_verdict,
    quote,
    rate_verdict,
    run_threshold_extra,
)

SEED_TARGETS = {"rate_hz": 100e3, "signal_efficiency": 0.95, "background_rejection": 0.99, "latency_ns_l1": 4000.0}
FLOAT_CODE_SCALE = 2.0**20  # float scores (float twin, BDT) are searched on a fine grid of codes
DECISION_CHECK_EVENTS = 20_000


def khz_key(rate_hz: float) -> str:
    """``100`` for 100 kHz: the key of a rate point under ``trigger.at_rate``."""
    return f"{rate_hz / 1e3:g}"


@dataclass
class RatePointResult:
    """The seeds at one target rate: best network seed, best kinematic seed, each kinematic family."""

    target_rate_hz: float
    network: SeedQuote
    kinematic: SeedQuote | None
    baselines: dict[str, SeedQuote]
    gain: PairedGain | None
    extra: dict = field(default_factory=dict)  # event runs: event_network, gbdt_reference, no_lepton_jet
    families: dict[str, tuple[SeedQuote, PairedGain | None]] = field(default_factory=dict)  # best per network family

    def as_dict(self, words: JetWords, score_lsb: float | None) -> dict:
        """JSON-ready."""
        net = self.network.as_dict(words, score_lsb)
        return {
            **{k: net[k] for k in ("rate_hz", "rate_hz_err", "n_eff_fired", "resolved", "rate_upper_limit_hz",
                                   "signal_efficiency", "signal_efficiency_err", "signal_efficiency_band")},
            "target_rate_hz": self.target_rate_hz, "seed": net["seed"], "network": net,
            "kinematic": None if self.kinematic is None else self.kinematic.as_dict(words, None),
            "baselines": {k: v.as_dict(words, None) for k, v in self.baselines.items()},
            **({"families": {k: {**q.as_dict(words, score_lsb), "gain_over_best_kinematic": _gain_dict(g)}
                             for k, (q, g) in self.families.items()}} if self.families else {}),
            "gain_over_best_kinematic": _gain_dict(self.gain),
            "targets": {"rate": rate_verdict(self.network.rate, self.target_rate_hz),
                        "signal_efficiency": efficiency_verdict(self.network.efficiency,
                                                                SEED_TARGETS["signal_efficiency"])},
            **self.extra,
        }


def _gain_dict(gain: PairedGain | None) -> dict | None:
    return None if gain is None else {"value": gain.value, "err": gain.err, "gained": gain.gained, "lost": gain.lost,
                                      "n": gain.n, "method": "paired (discordant events)"}


@dataclass
class TriggerResult:
    """The trigger stage's result; :meth:`to_json` is ``metrics["trigger"]``."""

    enabled: bool
    note: str = ""
    facts: dict = field(default_factory=dict)
    points: list[RatePointResult] = field(default_factory=list)
    words: JetWords = JetWords()
    score_lsb: float | None = None
    per_jet: dict = field(default_factory=dict)
    bdt: dict | None = None
    decision_hls: dict | None = None
    bias_warning: str | None = None
    scan: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The metrics.json ``trigger`` section (keys of issue 10 plus the keys earlier versions wrote)."""
        if not self.enabled:
            return {"enabled": False, "note": self.note}
        main = self.points[0]
        at_rate = {khz_key(p.target_rate_hz): p.as_dict(self.words, self.score_lsb) for p in self.points}
        head = at_rate[khz_key(main.target_rate_hz)]
        net, cut = main.network, main.baselines.get("single_jet")
        out = {
            "enabled": True, **self.facts,
            "target_rate_hz": main.target_rate_hz,
            "threshold_code": main.network.seed.score_code,
            "threshold": None if main.network.seed.score_code is None else
            main.network.seed.score_code * (self.score_lsb or 1.0 / FLOAT_CODE_SCALE),
            "rate_hz": net.rate.rate_hz, "rate_hz_err": net.rate.rate_err_hz, "n_eff_fired": net.rate.n_eff_fired,
            "resolved": net.rate.resolved, "rate_upper_limit_hz": head["rate_upper_limit_hz"],
            "min_n_eff": net.rate.min_n_eff,
            "signal_efficiency": net.efficiency.value, "signal_efficiency_err": net.efficiency.err,
            "signal_efficiency_band": list(net.band),
            "signal_efficiency_text": net.efficiency.text(),
            "offline_efficiency": net.offline_efficiency.value, "offline_efficiency_err": net.offline_efficiency.err,
            "seed": head["seed"],
            "calibration": head["network"]["calibration"],
            "baselines": head["baselines"],
            "gain_over_best_kinematic": head["gain_over_best_kinematic"],
            "targets": head["targets"],
            "bias_warning": self.bias_warning,
            "at_rate": at_rate,
            "scan": self.scan,
            **self.per_jet,
            "signal_test_events": int(net.efficiency.total),
        }
        if cut is not None:
            out["cut_baseline"] = {"pt_threshold": self.words.gev(cut.seed.jet_pt_code), **cut.rate.as_dict(),
                                   "signal_efficiency": cut.efficiency.value,
                                   "signal_efficiency_err": cut.efficiency.err}
            out["gain_over_cut"] = net.efficiency.value - cut.efficiency.value
        if self.bdt is not None:
            out["bdt"] = self.bdt
            out["gap_to_bdt"] = self.bdt["signal_efficiency"] - net.efficiency.value
        if self.decision_hls is not None:
            out["decision_hls"] = self.decision_hls
        out.update(self.extra)
        return out


# --------------------------------------------------------------------------- inputs


def _sample_roles(config, table) -> tuple[list[int], list[int]]:
    roles = {s.name: s.role for s in config.data.samples}
    signal = [i for i, name in enumerate(table.samples) if roles.get(name) == "signal"]
    background = [i for i, name in enumerate(table.samples) if roles.get(name) == "background"]
    return signal, background


def jet_words(config) -> JetWords:
    """The seed's pT/HT words from the trigger config."""
    t = config.trigger
    return JetWords(t.pt_lsb_gev, t.pt_bits, t.ht_bits, t.ht_jet_pt)


def grid_spec(config) -> GridSpec:
    """The coarse outer grid from the trigger config."""
    t = config.trigger
    preselection = None
    if t.preselection is not None:
        words, p = jet_words(config), t.preselection
        preselection = (int(p.min_jets), None if p.jet_pt_gev is None else int(words.pt_code(p.jet_pt_gev)),
                        int(words.pt_code(p.ht_gev)))
    return GridSpec(pt_min_gev=min_jet_pt(config), pt_step_gev=t.grid_pt_step, jet_pt_max_gev=t.grid_jet_pt_max,
                    ht_jet_pt_max_gev=t.grid_ht_jet_pt_max, score_steps=t.grid_score_steps,
                    preselection=preselection)


def min_jet_pt(config) -> float:
    """Lowest jet pT the seed sees: ``trigger.min_jet_pt`` or the data selection's."""
    return config.trigger.min_jet_pt if config.trigger.min_jet_pt is not None else config.data.selection.pt_min


def check_rate_files(config) -> list[str]:
    """The expanded ``trigger.rate_files`` (empty when unset); a pattern matching nothing is an error."""
    import glob

    files: list[str] = []
    for pattern in config.trigger.rate_files or []:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if Path(pattern).exists() else [])
        if not matches:
            raise QTriggerError(f"key trigger.rate_files: no file matches {pattern!r}")
        files.extend(matches)
    return files


def read_rate_sample(config, preprocessor, files: list[str]):
    """(JetTable, network inputs) of the rate sample, read with the run's selection and preprocessing."""
    from qtrigger.data import read_jets
    from qtrigger.preprocess import run_inputs

    d = config.data
    table = read_jets({"rate": files}, config.features.jet_branches or ["Jet_pt"], truth_branch=config.labels.branch,
                      pt_min=d.selection.pt_min, abs_eta_max=d.selection.abs_eta_max, tree=d.tree,
                      step_size=d.step_size, max_events=None, on_nonfinite=d.on_nonfinite, progress=False)
    table, inputs, _ = run_inputs(config, table, preprocessor)
    return table, inputs


def offline_selection(table, min_jets: int, jet_pt: float) -> np.ndarray:
    """Per event: at least ``min_jets`` selected jets with pT >= ``jet_pt`` (the stated offline selection)."""
    passing = table.extra["pt"] >= jet_pt
    return np.bincount(table.event[passing], minlength=table.n_events) >= min_jets


def _jets_of(table, codes, config, words) -> SeedJets:
    pt = table.extra["pt"]
    n_scored = config.hls.jets_per_event
    return seed_jets(pt, codes, table.event, table.n_events, max(config.trigger.seed_jets, n_scored), n_scored, words,
                     jet_mask=pt >= min_jet_pt(config))


def _take(jets: SeedJets, rows: np.ndarray) -> SeedJets:
    return SeedJets(jets.pt[rows], jets.score[rows], jets.valid[rows], jets.ht[rows], jets.n_scored)


@dataclass
class _Events:
    """The four event sets of the study (one score)."""

    main: SeedJets
    rate: SeedJets
    calibration: WeightedRate
    held_out: WeightedRate
    selection: np.ndarray
    signal: SignalEvents
    bias: BiasRegion
    tag_reference: np.ndarray | None = None  # ht_ntag: score codes of the jets its tag grid is set on


def tag_reference_jets(config, table, labels, selection: np.ndarray) -> np.ndarray:
    """Per jet: a reference jet of the ``ht_ntag`` tag grid.

    The signal-labelled jets (``labels.signal_mask``: the b jets of a truth-flavour b tagger, every
    jet of the signal sample with ``labels.source: sample``) in the scored seed slots (the leading
    ``hls.jets_per_event`` jets with pT >= the seed's minimum) of the selection events (the signal
    events the seeds are chosen on, never the quoted ones).
    """
    rank = leading_rank(table.event)
    in_slot = (rank < config.hls.jets_per_event) & (table.extra["pt"] >= min_jet_pt(config))
    return in_slot & selection[table.event] & config.labels.signal_mask(labels)


# --------------------------------------------------------------------------- search and quote


def menu_points(ev: _Events, config, targets: list[float]) -> tuple[list[RatePointResult], list[ScanRow]]:
    """Search every configured family on the calibration half, quote the winners on held-out events."""
    words, grid = jet_words(config), grid_spec(config)
    n_slots, n_scored = ev.main.pt.shape[1], ev.main.n_scored
    scored = np.r_[ev.rate.score[ev.calibration.events].ravel(), ev.main.score[ev.selection].ravel()]
    scores = score_grid(scored, grid.score_steps)
    tags = None if ev.tag_reference is None else tag_grid(ev.tag_reference, config.trigger.grid_tag_efficiencies)
    rows: list[ScanRow] = []
    for family in config.trigger.families:
        outer = outer_grid(family, grid, words, n_scored, n_slots, scores, tags)
        rows += search_family(family, outer, ev.rate, ev.calibration, ev.main, ev.selection, targets)
    best_net = best_rows(rows, NETWORK_FAMILIES)
    kinematic = [f for f in config.trigger.families if f in KINEMATIC_FAMILIES]
    best_kin = best_rows(rows, kinematic)
    single_rows = [r for r in rows if r.seed.family == "jets" and r.seed.n_jets == 1]
    if not single_rows:  # the single-jet pT seed is always quoted (the classic reference)
        single_rows = search_family("jets", [Seed("jets", 1)], ev.rate, ev.calibration, ev.main, ev.selection, targets)
    single = best_rows(single_rows, ("jets",))
    points = []
    for target in targets:
        if target not in best_net:
            raise QTriggerError(f"no network seed could be tuned to {target:g} Hz")
        net = quote(best_net[target], "network", ev.rate, ev.held_out, ev.signal, ev.bias, ev.calibration)
        baselines = {}
        for family in kinematic:
            row = best_rows(rows, (family,)).get(target)
            if row is not None:
                baselines[family] = quote(row, family, ev.rate, ev.held_out, ev.signal, ev.bias, ev.calibration)
        if target in single:
            baselines["single_jet"] = quote(single[target], "single_jet", ev.rate, ev.held_out, ev.signal, ev.bias,
                                            ev.calibration)
        kin = None
        if target in best_kin:
            kin = quote(best_kin[target], "kinematic", ev.rate, ev.held_out, ev.signal, ev.bias, ev.calibration)
        gain = None
        if kin is not None:
            gain = paired_gain(net.seed.fires(ev.main)[ev.signal.events], kin.seed.fires(ev.main)[ev.signal.events])
        families = {}
        for family in [f for f in config.trigger.families if f in NETWORK_FAMILIES]:
            row = best_rows(rows, (family,)).get(target)
            if row is not None:
                q = net if row.seed == net.seed else \
                    quote(row, family, ev.rate, ev.held_out, ev.signal, ev.bias, ev.calibration)
                g = None if kin is None else paired_gain(q.seed.fires(ev.main)[ev.signal.events],
                                                         kin.seed.fires(ev.main)[ev.signal.events])
                families[family] = (q, g)
        points.append(RatePointResult(target, net, kin, baselines, gain, families=families))
    return points, rows


def scan_summary(rows: list[ScanRow], words: JetWords, score_lsb: float | None) -> list[dict]:
    """Per family, number of jets and target: the best grid point on the calibration half (the family scan)."""
    best: dict[tuple, ScanRow] = {}
    for row in rows:
        key = (row.seed.family, row.seed.n_jets, row.target_rate_hz)
        if key not in best or row.selection_efficiency > best[key].selection_efficiency:
            best[key] = row
    return [{"family": f, "n_jets": n, "target_rate_hz": t, "seed": r.seed.describe(words, score_lsb),
             "calibration_rate_hz": r.calibration_rate_hz, "calibration_rate_hz_err": r.calibration_rate_err_hz,
             "selection_efficiency": r.selection_efficiency} for (f, n, t), r in sorted(best.items())]


def _bias_warning(points: list[RatePointResult], limit: float, bias: BiasRegion) -> str | None:
    worst = [(q.bias_fraction, q.label, p.target_rate_hz) for p in points
             for q in [p.network, *p.baselines.values()] if q.bias_fraction is not None]
    if not worst:
        return None
    fraction, label, target = max(worst)
    if fraction <= limit:
        return None
    return (f"{100 * fraction:.0f} % of the fired rate of the {label} seed at {target / 1e3:g} kHz comes from events "
            f"whose leading jet is below {bias.below_gev:g} GeV (generator cut pTHat > {bias.generator_cut_gev:g} GeV): "
            "that rate is underestimated; use a sample generated from lower pTHat (or stitched bins)")


# --------------------------------------------------------------------------- the study


def _rate_sample(config, prepared, score_fn, background):
    """(table, per-jet codes or None, network inputs or None, events mask, description)."""
    files = check_rate_files(config)
    if files:
        if score_fn is None:
            raise QTriggerError("trigger.rate_files needs the network to score the rate sample; "
                                "call the study with score_fn")
        table, x = read_rate_sample(config, prepared.preprocessor, files)
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
    info = read_sample_info(rate_files)
    calibration_events, held_out_events = split_events(rate_events, t.rate_split_seed)
    rate_args = (rate_table.event_file, rate_table.event_weight, rate_table.files)
    kw = dict(lumi_cm2s=t.lumi_cm2s, n_bunches=t.n_bunches, min_n_eff=t.min_n_eff)
    calibration = weighted_rate(info, t.normalisation, calibration_events, *rate_args, **kw)
    held_out = weighted_rate(info, t.normalisation, held_out_events, *rate_args, **kw)
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
        everything = weighted_rate(info, t.normalisation, rate_events, *rate_args, **kw)
        checked = rate_at_run_thresholds(run_trigger, rate_jets, everything)
        result.extra = run_threshold_extra(checked, khz_key(targets[0]))
    if run_dir is not None:
        from qtrigger.trigger.plots import study_plots

        study_plots(Path(run_dir) / "plots", ev, points[0], words, score_lsb)
        _jet_plots(Path(run_dir) / "plots", config, table, main, points[0], quoted, prepared.labels, words)
    return result


def _facts(config, info, rate_source, calibration, held_out, signal_events, selection, have_val, bias) -> dict:
    t = config.trigger
    return {
        "method": t.normalisation, "score": t.score, "lumi_cm2s": t.lumi_cm2s,
        "min_jet_pt": min_jet_pt(config), "min_jets": t.min_jets, "jets_per_event": config.hls.jets_per_event,
        "seed_jets": max(t.seed_jets, config.hls.jets_per_event),
        "ht_definition": (f"sum of pT codes ({t.pt_lsb_gev:g} GeV LSB, {t.pt_bits}-bit words) of the leading "
                          f"{max(t.seed_jets, config.hls.jets_per_event)} selected jets (|eta| < "
                          f"{config.data.selection.abs_eta_max:g}) with pT >= {t.ht_jet_pt:g} GeV, "
                          f"saturating at {t.ht_bits} bits"),
        "rate_sample": {"source": rate_source, "files": list(info.files), "xsec_mb": info.xsec_mb,
                        "pthat_min": info.pthat_min, "stitched_bins": len(info.bins),
                        "split_seed": t.rate_split_seed, "calibration": calibration.description,
                        "held_out": held_out.description},
        "background_sample": {"files": list(info.files), "xsec_mb": info.xsec_mb, "pthat_min": info.pthat_min,
                              "test_events": int(held_out.events.sum())},
        "signal_sample": {"quoted_on": signal_events.description,
                          "chosen_on": (f"signal validation events ({int(selection.sum()):,})" if have_val
                                        else "the same signal test events (no validation scores)"),
                          "offline_selection": signal_events.offline_description},
        "generator_cut_gev": bias.generator_cut_gev, "bias_region_below_gev": bias.below_gev,
        "completeness_note": _completeness_note(info, min_jet_pt(config), bias),
    }


def _completeness_note(info, min_pt: float, bias: BiasRegion) -> str:
    if bias.below_gev is not None and min_pt < bias.below_gev:
        return (f"rate sample generated with pTHat > {bias.generator_cut_gev:g} GeV is complete only above "
                f"~{bias.below_gev:g} GeV leading-jet pT; the seeds accept jets from {min_pt:g} GeV (see bias_warning)")
    return (f"rate sample complete above the seeds' minimum jet pT {min_pt:g} GeV (pTHat > {info.pthat_min or 0:g} "
            "GeV); particle level, no pileup: a real L1 rate would be higher")


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
    from qtrigger.trigger.plots import plot_jet_efficiency

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
    from qtrigger.trigger.references import bdt_reference

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
    from qtrigger.trigger.decision import check_seed_csim, write_seed_hls

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
    (``qtrigger.pipeline.trigger_score``); other jets are scored with the exact integer model.
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
