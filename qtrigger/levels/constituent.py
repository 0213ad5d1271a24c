"""``features.level: constituent``: one row per jet, its leading constituents as a (slots, fields) array.

The jet level (:mod:`qtrigger.levels.jet`) with other inputs per jet: the fields of
:mod:`qtrigger.inputs.constituent`, read from ``JetCand_*``, for a set network (``model.form: deepsets``).
Jets with a NaN/inf constituent input are dropped and counted, or refused, per ``data.on_nonfinite``.
Its RTL is the whole set network (:mod:`qtrigger.firmware.set_rtl`), with per-event layouts for
``trigger.seed_jets`` jets.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from qtrigger.emulate.sets import extract_set_network
from qtrigger.firmware.set_rtl import set_rtl_stage
from qtrigger.inputs.constituent import check_constituent_branches, constituent_inputs, finite_constituents
from qtrigger.levels.base import network_rtl
from qtrigger.levels.jet import JetLevel


class ConstituentLevel(JetLevel):
    """One row per jet: its ``model.constituents`` leading constituents, zero-padded."""

    name = "constituent"

    def check_files(self, config, files, training):
        check_constituent_branches(files, config.data.tree)

    def source(self, config, table):
        return finite_constituents(table, config.features, config.model.constituents, config.data)

    def fit_inputs(self, config, table, source, train: np.ndarray):
        return constituent_inputs(source, config.features, train)

    def inputs_of(self, config, table, preprocessor):
        table, cands = finite_constituents(table, config.features, config.model.constituents, config.data)
        return table, preprocessor.transform(cands.codes), dict(cands.saturated)

    def input_words(self, preprocessor):
        """Each field at its own word (:meth:`Preprocessor.word_types`), as the set RTL's input ports take them."""
        return tuple(preprocessor.word_types())

    def rtl(self, config, prepared, network, trigger, run_dir, hls_dir):
        stage = partial(set_rtl_stage, jets_per_event=config.trigger.seed_jets,
                        words=self.input_words(prepared.preprocessor))
        return network_rtl(config, config.hls, network, prepared.inputs[prepared.split.test], hls_dir, stage=stage)

    def rtl_builder(self, run, max_rows, synthesize):
        x = run.test_jets()["inputs"]
        x = x[:max_rows] if max_rows is not None else x
        jets = run.config.trigger.seed_jets
        return lambda out: set_rtl_stage(extract_set_network(run.load_model("qat")), x, run.config.hls, out,
                                         jets_per_event=jets, synthesize=synthesize,
                                         words=self.input_words(run.preprocessor))
