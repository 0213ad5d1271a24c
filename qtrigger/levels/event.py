"""``features.level: event``: one network row per event; the network decides the event.

Read the seed's jets → the run's event-input builder (:func:`~qtrigger.inputs.object_event.event_input_spec`: the
leading jets, or the L1 object groups of ``features.objects``; one row of fixed-point codes per event)
→ preselection (``trigger.preselection``, a fixed seed of the ``ht`` family) → split by event. Training
and validation use the preselected events of their parts with physical per-event weights; every test
event is C-simulated, and the trigger study is :mod:`qtrigger.trigger.event_study`.

Labels: events of role-``signal`` samples are 1, of role-``background`` samples 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from qtrigger.config import resolve_sample_files
from qtrigger.data.reader import (EventSplit, JetTable, check_branches, collection_branch, nonfinite_text,
                                  split_by_event)
from qtrigger.data.crossing import overlay_veto_keep
from qtrigger.data.objects import check_object_files
from qtrigger.data.samples import event_xsec_weights_mb, read_sample_info
from qtrigger.emulate.score import score_head_name, scored
from qtrigger.emulate.sets import extract_any_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware.csim import csim_in_temporary_project
from qtrigger.inputs.codes import Preprocessor
from qtrigger.inputs.event import NARROW_WORD_FRACTION, EventInputs, EventInputSpec, check_input_words
from qtrigger.inputs.object_event import ObjectInputSpec, event_input_spec
from qtrigger.levels.base import InputLevel, Prepared, network_rtl
from qtrigger.metrics import MIN_JETS_PER_CLASS
from qtrigger.models.train import balanced
from qtrigger.results import DataSummary, ScoreMetrics
from qtrigger.rundir import RTL_PROJECT, write_stamp
from qtrigger.trigger.event_rtl import (
    DECISION_EVENTS_FILE,
    event_chain_inputs,
    event_chain_rtl,
    event_chain_rtl_for_run,
    load_decision_events,
    run_seeds,
)
from qtrigger.trigger.event_study import event_trigger_study
from qtrigger.trigger.preselection import check_preselection, check_rate_bins, preselect

MIN_EVENTS_PER_CLASS = 10


@dataclass
class EventData(Prepared):
    """Events as network rows: the per-jet :class:`Prepared` fields plus the event inputs, weights and preselection.

    ``split.train``/``split.val`` are preselected events of those parts; ``split.test`` is every
    test event (all are C-simulated; the trigger quotes efficiencies against all signal test events).
    """

    spec: EventInputSpec | ObjectInputSpec = None
    built: EventInputs = None
    weights: np.ndarray = None
    preselected: np.ndarray = None

    @property
    def is_signal(self) -> np.ndarray:
        """Per event: from a signal-role sample."""
        return self.labels == 1


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
            info = read_sample_info(files)
            keep = overlay_veto_keep(info, table.files, table.event_file[events], table.event_entry[events],
                                     config.data.tree)  # at pileup: each crossing once, as the rate counts it
            weights[events] = keep * event_xsec_weights_mb(info, table.event_file[events],
                                                           table.event_weight[events], table.files)
        else:
            w = table.event_weight[events]
            weights[events] = w / w.mean()
    return weights


def weighted_auc(signal: np.ndarray, scores: np.ndarray, weight: np.ndarray) -> float | None:
    """ROC AUC with per-event weights (None with < 20 events of a class)."""
    if min(int(signal.sum()), int((~signal).sum())) < MIN_JETS_PER_CLASS:
        return None
    return float(roc_auc_score(signal, scores, sample_weight=weight))


def score_codes_of(network):
    """``inputs -> per-event score codes`` of the exact integer network (one output; a
    :class:`~qtrigger.emulate.score.ScoredNetwork`: its score)."""
    def score_fn(inputs):
        return network.forward_codes(inputs).reshape(len(inputs), -1)[:, 0].astype(np.int64)

    return score_fn


def all_test_events(config, table: JetTable, spec, preprocessor, built: EventInputs,
                    labels: np.ndarray, weights: np.ndarray, level: InputLevel) -> EventData:
    """Every event of ``table`` as a test event (``qtrigger evaluate``)."""
    everything = np.ones(table.n_events, bool)
    split = EventSplit(~everything, ~everything, everything, np.full(table.n_events, 2, np.int8))
    return EventData(table, labels, split, preprocessor.transform(built.codes), preprocessor, level, spec, built,
                     weights, preselect(config, built, spec.words))


class EventLevel(InputLevel):
    """One row per event: the leading jets' words → Δφ, HT and jet-count codes."""

    name = "event"

    def check_files(self, config, files, training):
        super().check_files(config, files, training)
        if training:  # the lepton-like flag
            flag = [collection_branch(b, config.features.collection) for b in ("Jet_chEmEF", "Jet_muEF")]
            check_branches(files, flag, config.data.tree)
        if config.features.objects:
            check_object_files(files, list(config.features.objects), config.data.tree)

    def check_rate_sample(self, config, info):
        check_rate_bins(config, info)

    def prepare(self, config, progress=False):
        spec = event_input_spec(config)
        table = spec.read(config, resolve_sample_files(config), config.data.max_events)
        built = spec.build(table)
        labels = self.training_labels(config, table)
        preselected = preselect(config, built, spec.words)
        part = split_by_event(table, config.data.split.train, config.data.split.val, config.data.split.seed).event_part
        split = EventSplit((part == 0) & preselected, (part == 1) & preselected, part == 2, part)
        self.check_training_split(config, labels, preselected, split)
        check_input_words(built, "events read")
        preprocessor = Preprocessor.fit(built.codes[split.train], spec.features_config(config.features.shifts),
                                        spec.names)
        preprocessor.saturated_fraction = dict(built.saturated)
        return EventData(table, labels, split, preprocessor.transform(built.codes), preprocessor, self, spec, built,
                         event_weights(config, table, labels), preselected)

    def training_labels(self, config, table) -> np.ndarray:
        """Per event, its training label (1 signal, 0 background) from the samples' roles."""
        return event_labels(config, table)

    def check_training_split(self, config, labels, preselected, split) -> None:
        """One-line error when the preselected train or val events are too few of a class to train on."""
        check_preselection(config, labels, preselected, "training sample")
        for name, mask in (("train", split.train), ("val", split.val)):
            counts = np.bincount(labels[mask], minlength=2)
            if counts.min() < MIN_EVENTS_PER_CLASS:
                raise QTriggerError(f"{name} split has too few preselected events to train on (background, signal: "
                                    f"{counts.tolist()}; need >= {MIN_EVENTS_PER_CLASS} of each); use a larger "
                                    "sample or a looser trigger.preselection")

    def n_outputs(self, config):
        return 1

    def fit_weights(self, config, prepared):
        return prepared.weights[prepared.split.train], prepared.weights[prepared.split.val]

    def scores(self, config, logits):
        return np.asarray(logits).reshape(len(logits), -1)[:, 0]

    def test_signal(self, config, prepared):
        return prepared.is_signal[prepared.split.test]

    def score_metrics(self, config, prepared, scores, threshold=None):
        test = prepared.split.test
        keep = prepared.preselected[test]
        signal = prepared.is_signal[test][keep]
        weight = balanced(prepared.weights[test][keep], signal.astype(np.int64), 2)
        return ScoreMetrics(auc=weighted_auc(signal, scores[keep], weight),
                            auc_note="event AUC on preselected test events, weighted as the training "
                                     "(signal and background totals equal)")

    def csim_metrics(self, config, prepared, scores, qat_metrics):
        return {"rows": "test events"}

    def summary(self, config, prepared):
        table, split, part = prepared.table, prepared.split, prepared.split.event_part
        by_part = {p: int((part == i).sum()) for i, p in enumerate(("train", "val", "test"))}
        preselected = {p: int(((part == i) & prepared.preselected).sum()) for i, p in enumerate(("train", "val", "test"))}
        return DataSummary(
            samples={name: [table.files[i] for i in sorted(set(table.event_file[table.event_sample == k]))]
                     for k, name in enumerate(table.samples)},
            n_events=int(table.n_events),
            n_jets={"train": int(split.train.sum()), "val": int(split.val.sum()), "test": int(split.test.sum())},
            signal_fraction=float(prepared.is_signal[split.train].mean()),
            dropped_nonfinite=table.dropped_nonfinite,
            input_type=str(prepared.preprocessor.input_type),
            shifts=dict(zip(prepared.preprocessor.names, prepared.preprocessor.shifts)),
            extra={"level": "event", "rows": "events (n_jets holds event counts: train/val preselected, test all)",
                   "inputs": list(prepared.spec.names), **prepared.spec.summary(),
                   "events_by_part": by_part, "preselected_by_part": preselected,
                   "event_weights": config.training.event_weights})

    def save_test_rows(self, path, config, prepared, signal):
        test = prepared.split.test
        np.savez_compressed(path, inputs=prepared.inputs[test], labels=prepared.labels[test], signal=signal,
                            event=np.flatnonzero(test), preselected=prepared.preselected[test],
                            weight=prepared.weights[test], rows="events")

    def hls_config(self, config):
        return config.hls.model_copy(update={"jets_per_event": 1})  # one network per event

    def inputs_of(self, config, table, preprocessor):
        built = event_input_spec(config).build(table)
        return table, preprocessor.transform(built.codes), dict(built.saturated)

    def trigger(self, config, prepared, network, artefacts, run_dir, hls_dir, project_name):
        network = scored(network, score_head_name(config))
        return event_trigger_study(config, prepared, score_codes_of(network), network.output_type, run_dir,
                                   network=network if config.hls.csim else None, hls_dir=hls_dir,
                                   project_name=project_name, keep_decision_events=True).to_json()

    def rtl(self, config, prepared, network, trigger, run_dir, hls_dir):
        """The whole event seed (jet words → accept bit) as da4ml Verilog; without a trigger study, the network."""
        if not config.trigger.enabled:
            return network_rtl(config, self.hls_config(config), network, prepared.inputs[prepared.split.test], hls_dir)
        sets = load_decision_events(Path(run_dir) / DECISION_EVENTS_FILE, prepared.spec)
        hls = self.hls_config(config)
        network = scored(network, score_head_name(config))
        rtl = event_chain_rtl(network, prepared.spec, prepared.preprocessor, run_seeds(trigger), sets, hls,
                              Path(hls_dir) / "rtl", synthesize=hls.rtl_synthesis, rng_seed=config.training.seed)
        write_stamp(Path(hls_dir) / "rtl", RTL_PROJECT)  # hls rtl --overwrite may replace it
        print(rtl.summary())
        out = rtl.to_json()
        out["directory"] = str(Path(config.hls.output_dir) / str(config.name) / "rtl")
        return out

    def rtl_builder(self, run, max_rows, synthesize):
        """The whole event seed of a finished run with a trigger study (its network, quoted seeds and checked
        ``decision_events.npz``, ``max_rows`` per real set); without one, the network alone."""
        if not (run.result.trigger or {}).get("at_rate"):
            return super().rtl_builder(run, max_rows, synthesize)
        inputs = event_chain_inputs(run, max_events=max_rows)
        return lambda out: event_chain_rtl_for_run(run, inputs, out, synthesize=synthesize)

    def evaluate_files(self, finished, config, files, csim, max_events, progress):
        """Every event scored by the exact network and (``csim``) its C-simulation; no AUC (a file has no
        per-event truth: ``--signal/--background`` gives the trigger study)."""
        spec = event_input_spec(config)
        table = spec.read(config, {"data": list(files)}, max_events)
        built = spec.build(table)
        x = finished.preprocessor.transform(built.codes)
        warnings = [w for w in [nonfinite_text(table)] if w]
        warnings += [f"{name}: {100 * f:.1f} % of the filled entries saturate its input word; check the units of "
                     "this file" for name, f in built.saturated.items() if f > NARROW_WORD_FRACTION]
        for warning in warnings:
            logging.getLogger("qtrigger").warning("evaluate: %s", warning)
        model = finished.load_model("qat")
        network = extract_any_network(model)
        codes = network.forward_codes(x)
        result = {"run": config.name, "files": list(files), "n_events": table.n_events, "n_jets": table.n_jets,
                  "n_signal_jets": 0, "max_events": max_events, "level": "event",
                  "preselected_events": int(preselect(config, built, spec.words).sum()),
                  "qat": {"auc": None, "auc_note": "event-level network: a file has no per-event truth; use "
                                                   "--signal/--background for its trigger study"},
                  "warnings": warnings}
        if csim:
            result["csim"] = csim_in_temporary_project(model, network, self.hls_config(config), config.name, x, codes)
        return result

    def evaluate_trigger(self, finished, config, background_files, out):
        """Seeds re-tuned on the new background's calibration half and quoted on its held-out half; the run's own
        seeds (thresholds unchanged) applied to every event of it. No GBDT reference (it needs training)."""
        spec = event_input_spec(config)
        table = spec.read(config, resolve_sample_files(config))
        built = spec.build(table)
        check_input_words(built, "signal events")
        data = all_test_events(config, table, spec, finished.preprocessor, built, np.ones(table.n_events, np.int64),
                               np.ones(table.n_events), self)
        network = extract_any_network(finished.load_model("qat"))
        run_trigger = finished.result.trigger or {}
        return event_trigger_study(config, data, score_codes_of(network), network.output_type, out, gbdt=False,
                                   run_trigger=run_trigger if "at_rate" in run_trigger else None).to_json()

