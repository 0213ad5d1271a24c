"""The interface every input level implements, and the registry that picks one from ``features.level``.

An input level answers the questions a run asks of its inputs, so that :mod:`qtrigger.runs.pipeline`
never asks which level it runs:

- :meth:`InputLevel.check_files`: its own preflight (the branches it reads), before any work;
- :meth:`InputLevel.prepare`: the inputs, labels and split of the training samples (a :class:`Prepared`);
- :meth:`InputLevel.fit_weights`, :meth:`InputLevel.scores`, :meth:`InputLevel.score_metrics`,
  :meth:`InputLevel.summary`, :meth:`InputLevel.save_test_rows`: what training and the report need;
- :meth:`InputLevel.inputs_of`: network inputs of other files (``evaluate``, the rate sample);
- :meth:`InputLevel.trigger`, :meth:`InputLevel.rtl`: the trigger study and the RTL of the decision;
- :meth:`InputLevel.input_words`: the word each network input reaches the hardware in (estimate and RTL);
- :meth:`InputLevel.evaluate_files`, :meth:`InputLevel.evaluate_trigger`: ``qtrigger evaluate``.

A new level is one module with a subclass and one :func:`register_level` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qtrigger.config import KNOWN_LEVELS, RunConfig
from qtrigger.data.reader import EventSplit, JetTable, check_collection
from qtrigger.emulate.sets import extract_any_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware.rtl_stage import rtl_stage
from qtrigger.inputs.codes import Preprocessor
from qtrigger.rundir import RTL_PROJECT, write_stamp


@dataclass
class Prepared:
    """Network rows with labels, split by event, and the level that built them.

    ``inputs``: every row's fixed-point network inputs; ``split`` selects rows (jets or events) per part;
    ``input_level`` reads more files the same way (``input_level.inputs_of``), e.g. for the trigger's rate sample.
    """

    table: JetTable
    labels: np.ndarray
    split: EventSplit
    inputs: np.ndarray
    preprocessor: Preprocessor
    input_level: Any = None


class InputLevel:
    """What a run needs from one input level (see the module docstring). Subclasses set ``name``."""

    name: str = ""

    def check_files(self, config: RunConfig, files: list[str], training: bool) -> None:
        """One-line error when ``files`` lack what this level reads (``training``: a training sample, else a rate
        sample or a file to evaluate); here: the ``features.collection`` the jets are read from."""
        check_collection(files, config.features.collection, config.data.tree)

    def check_rate_sample(self, config: RunConfig, info) -> None:
        """One-line error when the rate sample (its ``Runs`` info) cannot serve this level's trigger study."""

    def prepare(self, config: RunConfig, progress: bool = False) -> Prepared:
        """Read the configured samples; labels, split by event, inputs with shifts fitted on train."""
        raise NotImplementedError

    def n_outputs(self, config: RunConfig) -> int:
        """Logits of the network."""
        return 1 if config.labels.mode == "binary" else len(config.labels.class_names)

    def fit_weights(self, config: RunConfig, prepared: Prepared) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per-row weights of the train and validation rows (None: unweighted)."""
        return None, None

    def scores(self, config: RunConfig, logits: np.ndarray) -> np.ndarray:
        """The trigger score of each row from the network's logits (no softmax)."""
        raise NotImplementedError

    def test_signal(self, config: RunConfig, prepared: Prepared) -> np.ndarray:
        """Per test row: counts as signal."""
        raise NotImplementedError

    def score_metrics(self, config: RunConfig, prepared: Prepared, scores: np.ndarray, threshold: float | None = None):
        """The test rows' :class:`~qtrigger.results.ScoreMetrics` for ``scores``."""
        raise NotImplementedError

    def validation_auc(self, config: RunConfig, prepared: Prepared, network) -> float | None:
        """The QAT network's AUC on the validation rows (exact reference; ``metrics.json`` → ``qat.val_auc``), the
        basis of choices that must not see the test rows (recipes, β, searches). None: the level has none."""
        return None

    def csim_metrics(self, config: RunConfig, prepared: Prepared, scores: np.ndarray, qat_metrics) -> dict:
        """Keys appended to ``metrics.json`` → ``csim`` for the C-simulation's scores."""
        return {}

    def summary(self, config: RunConfig, prepared: Prepared):
        """The :class:`~qtrigger.results.DataSummary` of what was read and how it was split."""
        raise NotImplementedError

    def artefacts(self, config: RunConfig, prepared: Prepared) -> dict:
        """Extra inputs of the run's plots."""
        return {}

    def save_test_rows(self, path: Path, config: RunConfig, prepared: Prepared, signal: np.ndarray) -> None:
        """The test rows as the network saw them (``test_jets.npz``)."""
        raise NotImplementedError

    def hls_config(self, config: RunConfig):
        """The ``hls`` section the network's firmware is built with."""
        return config.hls

    def input_words(self, preprocessor: Preprocessor) -> tuple | None:
        """The fixed-point word each network input reaches the hardware in (the analytic estimate's and the RTL's
        first layer); None: every input at the common ``preprocessor.input_type``."""
        return None

    def inputs_of(self, config: RunConfig, table: JetTable,
                  preprocessor: Preprocessor) -> tuple[JetTable, np.ndarray, dict]:
        """A finished run's network inputs for the rows of ``table``: the table of the jets they belong to (rows
        with a NaN/inf input dropped and counted, or refused, per ``data.on_nonfinite``), the inputs and each
        input's saturated fraction."""
        raise NotImplementedError

    def trigger(self, config: RunConfig, prepared: Prepared, network, artefacts: dict, run_dir: Path, hls_dir: Path,
                project_name: str) -> dict:
        """The trigger study on the trained network (``metrics.json`` → ``trigger``)."""
        raise NotImplementedError

    def rtl(self, config: RunConfig, prepared: Prepared, network, trigger: dict | None, run_dir: Path,
            hls_dir: Path) -> dict:
        """The network's (or the whole decision's) RTL: latency, II, RTL = reference, yosys counts."""
        raise NotImplementedError

    def rtl_builder(self, run, max_rows: int | None, synthesize: bool):
        """For ``qtrigger hls rtl RUN``: a function writing the finished run's RTL project into a given folder, its
        inputs read and checked now (before any work). By default the network on the run's test rows."""
        x = run.test_jets()["inputs"]
        x = x[:max_rows] if max_rows is not None else x
        return lambda out: rtl_stage(extract_any_network(run.load_model("qat")), x, run.config.hls, out,
                                     synthesize=synthesize)

    def evaluate_files(self, finished, config: RunConfig, files: list[str], csim: bool, max_events: int | None,
                       progress: bool) -> dict:
        """A finished run applied to other files (``qtrigger evaluate RUN --data F``)."""
        raise NotImplementedError

    def evaluate_trigger(self, finished, config: RunConfig, background_files: list[str], out: Path) -> dict:
        """A finished run's trigger study on other signal and background files."""
        raise NotImplementedError


def network_rtl(config: RunConfig, hls, network, x_test: np.ndarray, hls_dir: Path, stage=rtl_stage) -> dict:
    """da4ml Verilog of the network beside its HLS project (built with ``hls``): latency/II, RTL = reference,
    yosys counts (``metrics.json`` → ``rtl``). ``stage``: the RTL stage function (:func:`rtl_stage` for an MLP)."""
    rtl = stage(network, x_test, hls, Path(hls_dir) / "rtl", synthesize=hls.rtl_synthesis, seed=config.training.seed)
    write_stamp(Path(hls_dir) / "rtl", RTL_PROJECT)  # hls rtl --overwrite may replace it
    print(rtl.summary())
    out = rtl.to_json()
    out["directory"] = str(Path(config.hls.output_dir) / str(config.name) / "rtl")
    return out


LEVELS: dict[str, InputLevel] = {}


def register_level(level: InputLevel) -> InputLevel:
    """Make ``level`` selectable as ``features.level: <level.name>``."""
    LEVELS[level.name] = level
    KNOWN_LEVELS.add(level.name)
    return level


OBJECTIVE_LEVELS: dict[tuple[str, str], InputLevel] = {}  # (features.level, training.objective) → its level


def register_objective_level(level_name: str, objective: str, level: InputLevel) -> InputLevel:
    """Make ``level`` the input level of ``features.level: level_name`` with ``training.objective: objective``."""
    OBJECTIVE_LEVELS[(level_name, objective)] = level
    return level


def level_for(config: RunConfig) -> InputLevel:
    """The registered input level of ``config.features.level`` (and of ``training.objective``, when one is
    registered for the pair: the event level's autoencoder)."""
    key = (config.features.level, config.training.objective)
    if key in OBJECTIVE_LEVELS:
        return OBJECTIVE_LEVELS[key]
    try:
        return LEVELS[config.features.level]
    except KeyError:
        raise QTriggerError(f"key features.level: {config.features.level!r} is not a registered input level "
                            f"(expected one of {sorted(LEVELS)})") from None
