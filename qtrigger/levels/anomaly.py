"""``features.level: event`` with ``training.objective: autoencoder``: the anomaly seed's encoder.

The event level's inputs (the leading jets, or ``features.objects``) read from background-only samples (zero-bias
crossings, or the rate sample with ``training.event_weights: xsec``): no labels. The network is a VAE encoder's mu
head (:mod:`qtrigger.models.autoencoder`) with ``model.autoencoder.latent`` outputs; its score is sum_i mu_i^2
(:class:`~qtrigger.emulate.score.SumOfSquares`), exact in the integer reference, the C-simulation (of the latent
codes, then the same sum), the accept-bit C++ and the event-seed RTL. The trigger study is
:mod:`qtrigger.trigger.anomaly_study`: the ``anomaly`` seed tuned on the rate sample like every seed, quoted per
named signal sample (``trigger.signal_samples``, never used for training, selection or thresholds).
"""

from __future__ import annotations

import numpy as np

from qtrigger.config import resolve_patterns
from qtrigger.data.reader import EventSplit
from qtrigger.emulate.score import score_head_name, scored
from qtrigger.errors import QTriggerError
from qtrigger.inputs.event import check_input_words
from qtrigger.levels.event import EventData, EventLevel, score_codes_of
from qtrigger.results import ScoreMetrics
from qtrigger.trigger.anomaly_study import anomaly_trigger_study
from qtrigger.trigger.preselection import preselect


MIN_TRAINING_EVENTS = 20


class AutoencoderEventLevel(EventLevel):
    """One row per background event, no labels; the score is sum mu^2 of the encoder's outputs."""

    name = "event"

    def training_labels(self, config, table) -> np.ndarray:
        """Background only: nothing is labelled."""
        return np.zeros(table.n_events, np.int64)

    def check_training_split(self, config, labels, preselected, split) -> None:
        """One-line error when the preselected train or val events are too few to train the autoencoder."""
        for name, mask in (("train", split.train), ("val", split.val)):
            if int(mask.sum()) < MIN_TRAINING_EVENTS:
                raise QTriggerError(f"{name} split has {int(mask.sum())} preselected background events (need >= "
                                    f"{MIN_TRAINING_EVENTS} to train the autoencoder); use a larger sample or a "
                                    "looser trigger.preselection")

    def n_outputs(self, config):
        return int(config.model.autoencoder.latent)

    def scores(self, config, logits):
        values = np.asarray(logits, np.float64).reshape(len(logits), -1)
        return (values * values).sum(axis=1)  # sum mu^2 (exact for the integer codes' values)

    def score_metrics(self, config, prepared, scores, threshold=None):
        test = prepared.split.test & prepared.preselected
        kept = scores[prepared.preselected[prepared.split.test]]
        return ScoreMetrics(auc=None, auc_note="autoencoder: trained without labels; its quality is the anomaly "
                                               "seed's efficiency per named signal at fixed rate (trigger)",
                            extra={"score": "sum mu^2", "test_events": int(test.sum()),
                                   "mean_score": float(kept.mean()) if len(kept) else None,
                                   "median_score": float(np.median(kept)) if len(kept) else None})

    def csim_metrics(self, config, prepared, scores, qat_metrics):
        return {"rows": "test events", "score": "sum mu^2 of the C-simulated latent codes"}

    def trigger(self, config, prepared, network, artefacts, run_dir, hls_dir, project_name):
        network = scored(network, score_head_name(config))
        signals = {s.name: signal_events(config, prepared, s.name, s.files) for s in config.trigger.signal_samples}
        return anomaly_trigger_study(config, prepared, signals, score_codes_of(network), network, run_dir,
                                     hls_dir=hls_dir if config.hls.csim else None, project_name=project_name)


def signal_events(config, prepared: EventData, name: str, patterns: list[str]) -> EventData:
    """A named signal sample's events as the run's inputs (its preprocessor), labelled 1 and split by event into a
    selection half (part 1) and a quoted half (part 2); never trained on."""
    files = resolve_patterns(patterns, f"trigger.signal_samples {name}")
    spec = prepared.spec
    table = spec.read(config, {name: files})
    built = spec.build(table)
    check_input_words(built, f"signal sample {name}")
    part = np.where(np.random.default_rng(config.data.split.seed).random(table.n_events) < 0.5, 1, 2).astype(np.int8)
    split = EventSplit(np.zeros(table.n_events, bool), part == 1, part == 2, part)
    return EventData(table, np.ones(table.n_events, np.int64), split, prepared.preprocessor.transform(built.codes),
                     prepared.preprocessor, prepared.input_level, spec, built, np.ones(table.n_events),
                     preselect(config, built, spec.words))
