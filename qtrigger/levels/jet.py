"""``features.level: jet``: one network row per jet, its summary features as fixed-point words.

The trigger study asks for ``trigger.seed_jets`` jets per event whose score passes the threshold
(:mod:`qtrigger.trigger.study`); the constituent level (:mod:`qtrigger.levels.constituent`) is this
level with other inputs per jet.
"""

from __future__ import annotations

import logging

import numpy as np

from qtrigger.config import RunConfig, resolve_sample_files
from qtrigger.data.reader import EventSplit, JetTable, make_labels, nonfinite_text, read_jets, split_by_event
from qtrigger.emulate.sets import extract_any_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware.csim import csim_in_temporary_project
from qtrigger.inputs.codes import Preprocessor, saturated_fractions, saturation_warnings, to_feature_codes
from qtrigger.levels.base import InputLevel, Prepared, network_rtl
from qtrigger.levels.scores import add_flavour_aucs, jet_score_metrics, trigger_score
from qtrigger.metrics import roc_auc
from qtrigger.models.train import pt_eta_weights
from qtrigger.results import DataSummary
from qtrigger.trigger.study import study_from_run, trigger_study

log = logging.getLogger("qtrigger")
MIN_ROWS_PER_CLASS = 10


def load_jets(config: RunConfig, samples: dict[str, list[str]] | None = None, progress: bool = False) -> JetTable:
    """Read the configured (or given) samples with the configured jet selection and branches."""
    samples = samples or resolve_sample_files(config)
    d = config.data
    return read_jets(samples, config.features.jet_branches or ["Jet_pt"], truth_branch=config.truth_branch,
                     pt_min=d.selection.pt_min, abs_eta_max=d.selection.abs_eta_max, tree=d.tree,
                     step_size=d.step_size, max_events=d.max_events, on_nonfinite=d.on_nonfinite, progress=progress,
                     collection=config.features.collection)


def jet_labels(config: RunConfig, table: JetTable) -> np.ndarray:
    """Labels from truth (default) or, with ``labels.source: sample``, 1 for jets of signal-role samples."""
    if config.labels.source == "sample":
        signal_samples = [i for i, name in enumerate(table.samples)
                          if any(s.name == name and s.role == "signal" for s in config.data.samples)]
        if not signal_samples:
            raise QTriggerError("labels.source: sample needs a data.samples entry with role: signal")
        return np.isin(table.jet_sample, signal_samples).astype(np.int64)
    return make_labels(table.truth, config.labels.mode, config.labels.signal, config.labels.classes)


def check_trainable(config: RunConfig, prepared: Prepared) -> None:
    """Both label classes present overall, >= 10 jets of each in every split, >= 10 events per sample role."""
    binary = config.labels.mode == "binary"
    names = ["background", "signal"] if binary else config.labels.class_names
    overall = np.bincount(prepared.labels, minlength=len(names))
    absent = [name for name, count in zip(names, overall) if count == 0]
    if absent:
        rule = f"labels.signal {config.labels.signal}" if binary else f"labels.classes {config.labels.classes}"
        raise QTriggerError(
            f"labels: no {' or '.join(absent)} jets among {prepared.table.n_jets} selected jets "
            f"(key labels.branch {config.labels.branch}, {rule}); files: {', '.join(prepared.table.files)}")
    for part in ("train", "val", "test"):
        counts = np.bincount(prepared.labels[getattr(prepared.split, part)], minlength=len(names))
        if counts.min() < MIN_ROWS_PER_CLASS:
            use = "train on" if part != "test" else "measure on"
            raise QTriggerError(f"{part} split has too few jets to {use} (per class: {counts.tolist()}; need >= 10 "
                                "of each); use a larger sample")
    check_events_per_role(config, prepared)


def check_events_per_role(config: RunConfig, prepared: Prepared) -> None:
    """>= 10 events of the signal samples and of the background samples in every split (efficiencies, rates)."""
    table, roles = prepared.table, {s.name: s.role for s in config.data.samples}
    for role in ("signal", "background"):
        indexes = [i for i, name in enumerate(table.samples) if roles.get(name) == role]
        if not indexes:
            continue
        of_role = np.isin(table.event_sample, indexes)
        for code, part in enumerate(("train", "val", "test")):
            n = int((of_role & (prepared.split.event_part == code)).sum())
            if n < MIN_ROWS_PER_CLASS:
                raise QTriggerError(
                    f"{part} split has {n} events of the {role} sample(s) {[table.samples[i] for i in indexes]} "
                    "(need >= 10; efficiencies and rates are quoted on them); use a larger sample")


def training_weights(config: RunConfig, prepared: Prepared) -> np.ndarray | None:
    """Per training jet weights, or None.

    ``training.event_weights: gen_weight`` weights every jet by its event's generator weight, normalised
    per sample (so a pTHat-biased QCD sample counts jets as the rate does); ``training.reweight_pt_eta``
    gives signal the background's (pT, |eta|) shape.
    """
    mask, table = prepared.split.train, prepared.table
    weights = np.ones(int(mask.sum()))
    if config.training.event_weights == "gen_weight":
        weights = table.jet_weight[mask].copy()
        samples = table.jet_sample[mask]
        for sample in np.unique(samples):
            in_sample = samples == sample
            weights[in_sample] /= weights[in_sample].mean()
    if config.training.reweight_pt_eta:
        weights *= pt_eta_weights(table.extra["pt"][mask], np.abs(table.extra["eta"][mask]),
                                  config.labels.signal_mask(prepared.labels[mask]))
    return None if np.all(weights == 1.0) else weights


class JetLevel(InputLevel):
    """One row per jet: the jet's summary features (``features.names``)."""

    name = "jet"

    def prepare(self, config: RunConfig, progress: bool = False) -> Prepared:
        prepared = self.rows(config, progress)
        check_trainable(config, prepared)
        return prepared

    def rows(self, config: RunConfig, progress: bool = False) -> Prepared:
        """The jets of the configured samples as network rows, before the checks that they suffice to train."""
        table, source = self.source(config, load_jets(config, progress=progress))
        labels = jet_labels(config, table)
        split = split_by_event(table, config.data.split.train, config.data.split.val, config.data.split.seed)
        inputs, preprocessor = self.fit_inputs(config, table, source, split.train)
        return Prepared(table, labels, split, inputs, preprocessor, self)

    def source(self, config: RunConfig, table: JetTable) -> tuple[JetTable, object]:
        """The jets to keep and what their inputs are made of beyond the table (the summary features: nothing)."""
        return table, None

    def fit_inputs(self, config: RunConfig, table: JetTable, source, train: np.ndarray) -> tuple[np.ndarray,
                                                                                             Preprocessor]:
        """Every jet's network inputs, with the power-of-two shifts fitted on the ``train`` jets."""
        codes = to_feature_codes(table.features, config.features, table.feature_names)
        preprocessor = Preprocessor.fit(codes[train], config.features, table.feature_names, raw=table.features[train])
        return preprocessor.transform(codes), preprocessor

    def inputs_of(self, config, table, preprocessor):
        codes = to_feature_codes(table.features, config.features, table.feature_names)
        saturated = saturated_fractions(table.features, config.features, table.feature_names)
        return table, preprocessor.transform(codes), saturated

    def fit_weights(self, config, prepared):
        return training_weights(config, prepared), None

    def scores(self, config, logits):
        return trigger_score(config, logits)

    def test_signal(self, config, prepared):
        return config.labels.signal_mask(prepared.labels[prepared.split.test])

    def score_metrics(self, config, prepared, scores, threshold=None):
        metrics = jet_score_metrics(config, self.test_signal(config, prepared), scores, threshold)
        add_flavour_aucs(config, prepared, metrics, scores)
        return metrics

    def validation_auc(self, config, prepared, network):
        val = prepared.split.val
        codes = network.forward_codes(prepared.inputs[val])
        return roc_auc(config.labels.signal_mask(prepared.labels[val]),
                       self.scores(config, codes * network.output_type.lsb))

    def csim_metrics(self, config, prepared, scores, qat_metrics):
        score = jet_score_metrics(config, self.test_signal(config, prepared), scores, qat_metrics.threshold).to_json()
        return {k: v for k, v in score.items() if k in ("auc", "signal_efficiency", "background_rejection")}

    def artefacts(self, config, prepared):
        if config.labels.branch != "Jet_hadronFlavour":
            return {}
        return {"test_flavour": prepared.table.truth[prepared.split.test]}

    def summary(self, config, prepared):
        split, table = prepared.split, prepared.table
        return DataSummary(
            samples={name: [table.files[i] for i in sorted(set(table.event_file[table.event_sample == k]))]
                     for k, name in enumerate(table.samples)},
            n_events=int(table.n_events),
            n_jets={"train": int(split.train.sum()), "val": int(split.val.sum()), "test": int(split.test.sum())},
            signal_fraction=float(config.labels.signal_mask(prepared.labels).mean()),
            dropped_nonfinite=table.dropped_nonfinite,
            input_type=str(prepared.preprocessor.input_type),
            shifts=dict(zip(prepared.preprocessor.names, prepared.preprocessor.shifts)))

    def save_test_rows(self, path, config, prepared, signal):
        mask, table = prepared.split.test, prepared.table
        np.savez_compressed(
            path, inputs=prepared.inputs[mask], labels=prepared.labels[mask], signal=signal,
            event=table.event[mask], sample=table.jet_sample[mask], weight=table.jet_weight[mask],
            pt=table.column("Jet_pt")[mask] if "Jet_pt" in table.feature_names else table.extra["pt"][mask],
            eta=table.extra["eta"][mask])

    def trigger(self, config, prepared, network, artefacts, run_dir, hls_dir, project_name):
        return study_from_run(config, prepared, network, artefacts["exact_codes"], artefacts, run_dir, hls_dir,
                              project_name, trigger_score).to_json()

    def rtl(self, config, prepared, network, trigger, run_dir, hls_dir):
        return network_rtl(config, config.hls, network, prepared.inputs[prepared.split.test], hls_dir)

    def evaluate_files(self, finished, config, files, csim, max_events, progress):
        table = load_jets(config, samples={"data": list(files)}, progress=progress)
        preprocessor = finished.preprocessor
        table, x, saturated = self.inputs_of(config, table, preprocessor)
        labels = make_labels(table.truth, config.labels.mode, config.labels.signal, config.labels.classes)
        warnings = [w for w in [nonfinite_text(table)] if w] + saturation_warnings(saturated,
                                                                                   preprocessor.saturated_fraction)
        for warning in warnings:
            log.warning("evaluate: %s", warning)
        model = finished.load_model("qat")
        network = extract_any_network(model)
        exact_codes = network.forward_codes(x)
        signal = config.labels.signal_mask(labels)
        scores = trigger_score(config, exact_codes * network.output_type.lsb)
        result = {"run": config.name, "files": list(files), "n_events": table.n_events, "n_jets": table.n_jets,
                  "n_signal_jets": int(signal.sum()), "max_events": max_events,
                  "qat": jet_score_metrics(config, signal, scores, finished.result.qat.threshold).to_json(),
                  "warnings": warnings}
        if csim:
            result["csim"] = csim_in_temporary_project(model, network, config.hls, config.name, x, exact_codes)
        return result

    def evaluate_trigger(self, finished, config, background_files, out):
        run_trigger = finished.result.trigger or {}
        table = load_jets(config)
        preprocessor = finished.preprocessor
        table, x, _ = self.inputs_of(config, table, preprocessor)
        network = extract_any_network(finished.load_model("qat"))
        everything = np.ones(table.n_jets, bool)
        split = EventSplit(~everything, ~everything, everything, np.full(table.n_events, 2, np.int8))
        prepared = Prepared(table, jet_labels(config, table), split, x, preprocessor, self)

        def score_fn(inputs):
            return np.asarray(trigger_score(config, network.forward_codes(inputs)), dtype=np.int64)

        return trigger_study(config, prepared, score_fn(x), network.output_type, out, None, None, score_fn=score_fn,
                             run_trigger=run_trigger if "at_rate" in run_trigger else None).to_json()
