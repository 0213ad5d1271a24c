"""``features.level: constituent``: one row per jet, its leading constituents as a (slots, fields) array.

The jet level (:mod:`qtrigger.levels.jet`) with other inputs per jet: the fields of
:mod:`qtrigger.inputs.constituent`, read from ``JetCand_*``, for a set network (``model.form: deepsets``).
"""

from __future__ import annotations

import numpy as np

from qtrigger.inputs.constituent import check_constituent_branches, constituent_codes, constituent_inputs
from qtrigger.levels.jet import JetLevel


class ConstituentLevel(JetLevel):
    """One row per jet: its ``model.constituents`` leading constituents, zero-padded."""

    name = "constituent"

    def check_files(self, config, files, training):
        check_constituent_branches(files, config.data.tree)

    def fit_inputs(self, config, table, train: np.ndarray):
        return constituent_inputs(table, config.features, config.model.constituents, train, config.data.tree,
                                  config.data.step_size)

    def inputs_of(self, config, table, preprocessor):
        cands = constituent_codes(table, config.features, config.model.constituents, config.data.tree,
                                  config.data.step_size)
        return preprocessor.transform(cands.codes), dict(cands.saturated)
