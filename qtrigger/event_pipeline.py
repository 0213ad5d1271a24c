"""An event-level run (``features.level: event``): the network decides the event.

Stages, as for per-jet runs: read jets → :func:`~qtrigger.event_inputs.build_event_inputs`
(one row of fixed-point codes per event) → preselection (``trigger.preselection``, a fixed
seed of the ``ht`` family) → split by event → train QAT (+ float twin) on preselected train
events with physical per-event weights, validating and early-stopping on preselected validation
events with the same weights → exact integer network → hls4ml C-simulation of every test event
and stress rows → the event trigger study (:mod:`qtrigger.trigger.event_study`).

Labels: events of role-``signal`` samples are 1, of role-``background`` samples 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.data import EventSplit, JetTable, nonfinite_text, split_by_event
from qtrigger.errors import QTriggerError
from qtrigger.event_inputs import EventInputs, EventInputSpec, build_event_inputs, check_input_words, read_event_table
from qtrigger.preprocess import Preprocessor
from qtrigger.results import DataSummary, RunResult, ScoreMetrics
from qtrigger.rundir import RTL_PROJECT, write_stamp

MIN_EVENTS_PER_CLASS = 10


@dataclass
class EventData:
    """Events as network rows: inputs, labels, weights, preselection and the by-event split.

    ``split.train``/``split.val`` are preselected events of those parts; ``split.test`` is every
    test event (all are C-simulated; the trigger quotes efficiencies against all signal test events).
    """

    table: JetTable
    spec: EventInputSpec
    built: EventInputs
    labels: np.ndarray
    split: EventSplit
    inputs: np.ndarray
    preprocessor: Preprocessor
    weights: np.ndarray
    preselected: np.ndarray

    @property
    def is_signal(self) -> np.ndarray:
        """Per event: from a signal-role sample."""
        return self.labels == 1


def preselection_seed(config, words):
    """``trigger.preselection`` as the ``ht``-family seed it is (None: every event passes)."""
    from qtrigger.trigger.seeds import Seed

    p = config.trigger.preselection
    if p is None:
        return None
    pt_code = int(words.pt_code(p.jet_pt_gev)) if p.jet_pt_gev is not None else None
    return Seed("ht", int(p.min_jets), pt_code, None, int(words.pt_code(p.ht_gev)))


def preselect(config, built: EventInputs, words) -> np.ndarray:
    """Per event: passes ``trigger.preselection`` on the seed's words."""
    seed = preselection_seed(config, words)
    return np.ones(built.n_events, bool) if seed is None else seed.fires(built.jets)


def event_labels(config, table: JetTable) -> np.ndarray:
    """1 for events of signal-role samples, 0 for background-role samples (other roles are refused)."""
    roles = {s.name: s.role for s in config.data.samples}
    odd = [name for name in table.samples if roles.get(name) not in ("signal", "background")]
    if odd:
        raise QTriggerError(f"features.level event: sample(s) {odd} need role signal or background "
                            "(events are labelled by their sample)")
    signal = [k for k, name in enumerate(table.samples) if roles[name] == "signal"]
    return np.isin(table.event_sample, signal).astype(np.int64)


def event_weights(config, table: JetTable, labels: np.ndarray) -> np.ndarray:
    """Physical per-event weights (``training.event_weights``): xsec = absolute stitched weights for
    background samples, genWeight (normalised per sample) for signal; gen_weight = genWeight per sample."""
    from qtrigger.samples import event_xsec_weights_mb, read_sample_info

    weights = np.ones(table.n_events)
    mode = config.training.event_weights
    if mode == "none":
        return weights
    for k, _name in enumerate(table.samples):
        events = table.event_sample == k
        if not events.any():
            continue
        if mode == "xsec" and not labels[events].any():
            files = sorted({table.files[f] for f in np.unique(table.event_file[events])})
            weights[events] = event_xsec_weights_mb(read_sample_info(files), table.event_file[events],
                                                    table.event_weight[events], table.files)
        else:
            w = table.event_weight[events]
            weights[events] = w / w.mean()
    return weights


def prepare_event_data(config) -> EventData:
    """Read, build event inputs, preselect, split by event, fit the power-of-two shifts on train."""
    from qtrigger.config import resolve_sample_files

    spec = EventInputSpec.from_config(config)
    table = read_event_table(config, resolve_sample_files(config), config.data.max_events)
    built = build_event_inputs(table, spec)
    labels = event_labels(config, table)
    preselected = preselect(config, built, spec.words)
    check_preselection(config, labels, preselected, "training sample")
    part = split_by_event(table, config.data.split.train, config.data.split.val, config.data.split.seed).event_part
    split = EventSplit((part == 0) & preselected, (part == 1) & preselected, part == 2, part)
    check_input_words(built, "events read")
    for name, mask in (("train", split.train), ("val", split.val)):
        counts = np.bincount(labels[mask], minlength=2)
        if counts.min() < MIN_EVENTS_PER_CLASS:
            raise QTriggerError(f"{name} split has too few preselected events to train on (background, signal: "
                                f"{counts.tolist()}; need >= {MIN_EVENTS_PER_CLASS} of each); use a larger sample "
                                "or a looser trigger.preselection")
    features = spec.features_config(config.features.shifts)
    preprocessor = Preprocessor.fit(built.codes[split.train], features, spec.names)
    preprocessor.saturated_fraction = dict(built.saturated)
    weights = event_weights(config, table, labels)
    return EventData(table, spec, built, labels, split, preprocessor.transform(built.codes), preprocessor, weights,
                     preselected)


def check_preselection(config, labels: np.ndarray, preselected: np.ndarray, where: str) -> None:
    """One-line error when the preselection keeps no signal or no background event."""
    p = config.trigger.preselection
    for value, name in ((1, "signal"), (0, "background")):
        total = int((labels == value).sum())
        kept = int((preselected & (labels == value)).sum())
        if total and kept == 0:
            raise QTriggerError(f"key trigger.preselection {p.model_dump() if p else None}: keeps no {name} event "
                                f"(0 of {total} in the {where}); loosen it")
        if total == 0:
            raise QTriggerError(f"features.level event: no {name} events in the {where} (data.samples roles)")


def _fit(config, data: EventData, quantized: bool):
    """One logit per event, trained and validated with the events' physical weights."""
    from qtrigger.pipeline import _fit as fit

    return fit(config, data, 1, quantized, data.weights[data.split.train], data.weights[data.split.val])


def score_codes_of(network):
    """``inputs -> per-event score codes`` of the exact integer network (one output)."""
    def score_fn(inputs):
        return network.forward_codes(inputs).reshape(len(inputs), -1)[:, 0].astype(np.int64)

    return score_fn


def weighted_auc(signal: np.ndarray, scores: np.ndarray, weight: np.ndarray) -> float | None:
    """ROC AUC with per-event weights (None with < 20 events of a class)."""
    from sklearn.metrics import roc_auc_score

    from qtrigger.metrics import MIN_JETS_PER_CLASS

    if min(int(signal.sum()), int((~signal).sum())) < MIN_JETS_PER_CLASS:
        return None
    return float(roc_auc_score(signal, scores, sample_weight=weight))


def _metrics(data: EventData, scores_test: np.ndarray) -> ScoreMetrics:
    test = data.split.test
    keep = data.preselected[test]
    signal = data.is_signal[test][keep]
    w = data.weights[test][keep]
    from qtrigger.train import balanced

    auc = weighted_auc(signal, scores_test[keep], balanced(w, signal.astype(np.int64), 2))
    return ScoreMetrics(auc=auc, auc_note="event AUC on preselected test events, weighted as the training "
                                          "(signal and background totals equal)")


def _summary(config, data: EventData) -> DataSummary:
    table, split = data.table, data.split
    part = split.event_part
    return DataSummary(
        samples={name: [table.files[i] for i in sorted(set(table.event_file[table.event_sample == k]))]
                 for k, name in enumerate(table.samples)},
        n_events=int(table.n_events),
        n_jets={"train": int(split.train.sum()), "val": int(split.val.sum()), "test": int(split.test.sum())},
        signal_fraction=float(data.is_signal[split.train].mean()),
        dropped_nonfinite=table.dropped_nonfinite,
        input_type=str(data.preprocessor.input_type),
        shifts=dict(zip(data.preprocessor.names, data.preprocessor.shifts)),
        extra={"level": "event", "rows": "events (n_jets holds event counts: train/val preselected, test all)",
               "inputs": list(data.spec.names), "event_jets": data.spec.n_jets,
               "events_by_part": {p: int((part == i).sum()) for i, p in enumerate(("train", "val", "test"))},
               "preselected_by_part": {p: int(((part == i) & data.preselected).sum())
                                       for i, p in enumerate(("train", "val", "test"))},
               "event_weights": config.training.event_weights},
    )


def event_stages(config, data: EventData, run_dir, hls_dir) -> tuple[RunResult, dict]:
    """Train QAT (+ float twin), C-simulate every test event, run the event trigger study."""
    from qtrigger.check import precision_profile
    from qtrigger.emulate import extract_network
    from qtrigger.pipeline import _firmware, _model_summary, _rtl
    from qtrigger.trigger.event_study import event_trigger_study

    split = data.split
    qat = _fit(config, data, True)
    qat.model.save(run_dir / "model_qat.h5")
    network = extract_network(qat.model)
    x_test = data.inputs[split.test]
    sig_test = data.is_signal[split.test]
    np.savez_compressed(run_dir / "test_jets.npz", inputs=x_test, labels=data.labels[split.test], signal=sig_test,
                        event=np.flatnonzero(split.test), preselected=data.preselected[split.test],
                        weight=data.weights[split.test], rows="events")
    exact_codes = network.forward_codes(x_test)
    qat_scores = exact_codes.reshape(len(exact_codes), -1)[:, 0] * network.output_type.lsb
    result = RunResult(run=config.name, data=_summary(config, data),
                       model=_model_summary(qat, network, data.preprocessor.input_type),
                       precision_profile=precision_profile(network, x_test), qat=_metrics(data, qat_scores))
    artefacts = {"test_labels": sig_test, "scores": {"QAT (exact)": qat_scores}, "history": {"qat": qat.history}}
    if config.training.float_twin:
        twin = _fit(config, data, False)
        twin.model.save(run_dir / "model_float.h5")
        float_scores = twin.model.predict(x_test.astype(np.float32), batch_size=8192, verbose=0)[:, 0]
        result.float_twin = _metrics(data, float_scores)
        artefacts["scores"]["float twin"] = float_scores
        artefacts["history"]["float"] = twin.history
    hls = config.hls.model_copy(update={"jets_per_event": 1})  # one network per event
    event_config = config.model_copy(update={"hls": hls})
    project, result.hls = _firmware(event_config, qat.model, network, hls_dir, x_test)
    result.csim = {"enabled": config.hls.csim}
    if config.hls.csim:
        from qtrigger.firmware import run_csim

        csim = run_csim(project, network, qat.model, x_test, exact_codes, seed=config.training.seed)
        result.csim.update(csim.to_json())
        result.csim["rows"] = "test events"
        artefacts["scores"]["C-simulation"] = csim.csim_codes.reshape(len(x_test), -1)[:, 0] * network.output_type.lsb
        artefacts["csim_codes"] = csim.csim_codes
    if config.trigger.enabled:
        result.trigger = event_trigger_study(config, data, score_codes_of(network), network.output_type, run_dir,
                                             network=network if config.hls.csim else None,
                                             hls_dir=hls_dir, project_name=project.project_name,
                                             keep_decision_events=True).to_json()
    if config.hls.rtl_enabled:
        result.extra["rtl"] = _event_rtl(event_config, data, network, result.trigger, run_dir, hls_dir) \
            if config.trigger.enabled else _rtl(event_config, network, x_test, hls_dir)
    return result, artefacts


def _event_rtl(config, data: EventData, network, trigger: dict, run_dir, hls_dir) -> dict:
    """The whole event seed (jet words → accept bit) as da4ml Verilog: latency/II, = Python, yosys (``rtl``)."""
    from qtrigger.firmware.event_rtl import DECISION_EVENTS_FILE, event_chain_rtl, load_decision_events, run_seeds

    sets = load_decision_events(Path(run_dir) / DECISION_EVENTS_FILE, data.spec)
    rtl = event_chain_rtl(network, data.spec, data.preprocessor, run_seeds(trigger), sets, config.hls,
                          hls_dir / "rtl", synthesize=config.hls.rtl_synthesis, rng_seed=config.training.seed)
    write_stamp(hls_dir / "rtl", RTL_PROJECT)  # hls rtl --overwrite may replace it
    print(rtl.summary())
    out = rtl.to_json()
    out["directory"] = str(Path(config.hls.output_dir) / str(config.name) / "rtl")
    return out


def preselection_leading_jet_gev(config) -> float:
    """The lowest leading-jet pT an event passing the preselection can have (GeV)."""
    t = config.trigger
    min_pt = t.min_jet_pt if t.min_jet_pt is not None else config.data.selection.pt_min
    p = t.preselection
    if p is None:
        return float(min_pt)
    jet = (p.jet_pt_gev if p.jet_pt_gev is not None else min_pt) if p.min_jets > 0 else min_pt
    return float(max(jet, min_pt, p.ht_gev / max(t.seed_jets, config.features.event_jets)))


def check_rate_bins(config, info) -> None:
    """One-line error when the rate sample lacks the low-pTHat bins the preselection needs.

    A sample generated above pTHat c is complete only for leading jets above ``trigger.bias_factor`` x c;
    the preselection must not accept events below that.
    """
    from qtrigger.samples import generator_cut_gev

    cut = generator_cut_gev(info)
    if cut is None:
        return
    needed = preselection_leading_jet_gev(config)
    if needed < config.trigger.bias_factor * cut:
        raise QTriggerError(
            f"rate sample {info.where()} starts at pTHat {cut:g} GeV (complete above ~{config.trigger.bias_factor * cut:g} "
            f"GeV leading-jet pT), but trigger.preselection accepts events with a leading jet down to {needed:g} GeV: "
            "add the lower pTHat bins or tighten the preselection")


def evaluate_event_trigger(finished, config, background_files: list[str], out) -> dict:
    """An event-level run's trigger study on other signal/background files (``qtrigger evaluate RUN``).

    ``config``: the run's config with the signal sample and ``trigger.rate_files`` replaced. Seeds are
    re-tuned on the new background's calibration half and quoted on its held-out half; the run's own
    seeds (thresholds unchanged) are applied to every event of it (``rate_at_run_threshold`` with pulls).
    No GBDT reference (it needs training).
    """
    from qtrigger.config import resolve_sample_files
    from qtrigger.emulate import extract_network
    from qtrigger.trigger.event_study import event_trigger_study

    spec = EventInputSpec.from_config(config)
    table = read_event_table(config, resolve_sample_files(config))
    built = build_event_inputs(table, spec)
    check_input_words(built, "signal events")
    labels = np.ones(table.n_events, np.int64)
    part = np.full(table.n_events, 2, np.int8)
    everything = np.ones(table.n_events, bool)
    split = EventSplit(~everything, ~everything, everything, part)
    preprocessor = finished.preprocessor
    data = EventData(table, spec, built, labels, split, preprocessor.transform(built.codes), preprocessor,
                     np.ones(table.n_events), preselect(config, built, spec.words))
    network = extract_network(finished.load_model("qat"))
    run_trigger = finished.result.trigger or {}
    return event_trigger_study(config, data, score_codes_of(network), network.output_type, out, gbdt=False,
                               run_trigger=run_trigger if "at_rate" in run_trigger else None).to_json()


def evaluate_event_files(finished, config, files: list[str], csim: bool = True, max_events: int | None = None) -> dict:
    """An event-level run applied to other files (``qtrigger evaluate RUN --data F``): every event scored by the
    exact network and (``csim``) by its C-simulation; inputs saturating their word on > 1 % of entries are warned
    about. There is no per-event truth in a file, so no AUC (use ``--signal/--background`` for the trigger study)."""
    import logging

    from qtrigger.emulate import extract_network
    from qtrigger.event_inputs import NARROW_WORD_FRACTION

    spec = EventInputSpec.from_config(config)
    table = read_event_table(config, {"data": list(files)}, max_events)
    built = build_event_inputs(table, spec)
    x = finished.preprocessor.transform(built.codes)
    warnings = [w for w in [nonfinite_text(table)] if w]
    warnings += [f"{name}: {100 * f:.1f} % of the filled entries saturate its input word; check the units of this file"
                 for name, f in built.saturated.items() if f > NARROW_WORD_FRACTION]
    for warning in warnings:
        logging.getLogger("qtrigger").warning("evaluate: %s", warning)
    model = finished.load_model("qat")
    network = extract_network(model)
    codes = network.forward_codes(x)
    preselected = preselect(config, built, spec.words)
    result = {"run": config.name, "files": list(files), "n_events": table.n_events, "n_jets": table.n_jets,
              "n_signal_jets": 0, "max_events": max_events, "level": "event",
              "preselected_events": int(preselected.sum()),
              "qat": {"auc": None, "auc_note": "event-level network: a file has no per-event truth; use "
                                               "--signal/--background for its trigger study"},
              "warnings": warnings}
    if csim:
        from qtrigger.pipeline import csim_in_temporary_project

        hls = config.hls.model_copy(update={"jets_per_event": 1})
        result["csim"] = csim_in_temporary_project(model, network, hls, config.name, x, codes)
    return result
