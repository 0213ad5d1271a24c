"""``features.level: constituent``: one row per jet, its leading constituents as a (slots, fields) array.

The jet level (:mod:`qtrigger.levels.jet`) with other inputs per jet: the fields of
:mod:`qtrigger.inputs.constituent`, read from ``JetCand_*``, for a set network (``model.form: deepsets``).
Jets with a NaN/inf constituent input are dropped and counted, or refused, per ``data.on_nonfinite``.
"""

from __future__ import annotations

import numpy as np

from qtrigger.inputs.constituent import check_constituent_branches, constituent_inputs, finite_constituents
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
