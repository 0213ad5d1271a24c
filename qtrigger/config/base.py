"""The base of every config section: strict models, the names a variation may take, the seed's features."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

SEED_FEATURES = [
    "Jet_pt",
    "Jet_eta",
    "Jet_phi",
    "Jet_mass",
    "Jet_chHEF",
    "Jet_neHEF",
    "Jet_chEmEF",
    "Jet_neEmEF",
    "Jet_muEF",
    "Jet_nConstituents",
]

ANGLE_LSB = math.pi / 720  # CMS Phase-2 correlator-layer eta/phi LSB


# The names ``features.level``, ``model.form`` and ``quantization.method`` may take: the built-in ones, and any a user registers
# (``qtrigger.levels.register_level``, ``qtrigger.models.build.register_form``) before loading a config.
KNOWN_LEVELS: set[str] = {"jet", "event", "constituent"}
KNOWN_FORMS: set[str] = {"mlp", "deepsets"}
# ``quantization.method``: QKeras on tf-keras (the default) or HGQ2 on Keras 3 (``qtrigger.models.build.METHODS``)
KNOWN_METHODS: set[str] = {"qkeras", "hgq"}


def _registered(name: str, known: set[str], what: str) -> str:
    if name not in known:
        raise ValueError(f"{name!r} is not a registered {what} (expected one of {sorted(known)})")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
