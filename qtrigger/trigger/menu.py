"""What both trigger studies share: the result types, the rate sample and its halves, menu points at
target rates (every seed family searched on the calibration half, quoted on the held-out half), and the
facts every quote states (sample, normalisation, completeness).

The per-jet study is :mod:`qtrigger.trigger.study`, the event-level one :mod:`qtrigger.trigger.event_study`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qtrigger.data.reader import read_jets
from qtrigger.errors import QTriggerError
from qtrigger.inputs.seed_jets import JetWords, SeedJets, jet_words, leading_rank, min_jet_pt, seed_jets
from qtrigger.trigger.efficiency import PairedGain, paired_gain
from qtrigger.trigger.rates import WeightedRate
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
    efficiency_verdict,
    quote,
    rate_verdict,
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


def read_rate_sample(config, prepared, files: list[str]):
    """(JetTable, network inputs) of the rate sample, read with the run's selection and its level's inputs."""
    d = config.data
    table = read_jets({"rate": files}, config.features.jet_branches or ["Jet_pt"], truth_branch=config.truth_branch,
                      pt_min=d.selection.pt_min, abs_eta_max=d.selection.abs_eta_max, tree=d.tree,
                      step_size=d.step_size, max_events=None, on_nonfinite=d.on_nonfinite, progress=False,
                      collection=config.features.collection)
    table, inputs, _ = prepared.input_level.inputs_of(config, table, prepared.preprocessor)
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
                        "pthat_min": info.pthat_min, "stitched_bins": len(info.bins), "mu": info.mu or 0.0,
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
