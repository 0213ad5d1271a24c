"""Search samplers for ``qtrigger scan``: seeded random points and successive halving.

A scan file with ``search:`` instead of ``axes:`` draws design points from a space::

    search:
      sampler: halving            # or random
      trials: 12                  # distinct points drawn (rung 0 of halving)
      seed: 0
      space:
        model.hidden: [[16], [8], [16, 8]]           # one value per trial
        quantization.layers.weight_bits: [3, 4, 5]   # quantization.layers.<key>: one value per Dense layer
        quantization.layers.activation_bits: [4, 6]  #   (activation keys: hidden layers only)
        pruning.layers: [0.5, 0.75, 0.85]            # one sparsity per Dense layer
      halving: {min_epochs: 4, eta: 3}
      methods:                    # optional: quantization.method -> the space of that method only
        qkeras: {quantization.layers.weight_bits: [4, 5], pruning.layers: [0.25, 0.5]}
        hgq: {quantization.hgq.beta: [3.0e-6, 1.0e-5, 3.0e-5], pruning.enabled: [false]}

Points are drawn with ``random.Random(seed)`` in the order of ``space``, so the same seed
gives the same trial list. With ``methods``, each point first draws its ``quantization.method`` (one of the
listed methods), then the shared ``space`` and that method's own keys (which may override a shared key), so
QKeras and HGQ2 points (per-layer bits and sparsity; HGQ2's β and initial widths) share one search, one
ranking and one front. Successive halving trains every point for ``min_epochs``, keeps
the best ``1/eta`` by the scan's physics metric, trains those ``eta`` times longer, and so
on; the last rung trains the survivors for the base config's full ``training.epochs``.
Rungs before the last skip the float twin, the C-simulation, the RTL stage and the trigger
stage (only the physics metric is read from them). Each rung's trials are ordinary trials with their own
hash (the epochs differ), so a killed search resumes rung by rung without redoing any
finished trial; promotion is recomputed from the result files.

``training_seeds: [1, 2, 3]`` trains every point of the last rung once per listed training
seed (``training.seed``; each (point, seed) is an ordinary trial with its own hash) and ranks
the point by its worst seed: the smallest physics metric and QAT - float gap, the largest cost
(:mod:`qtrigger.scan.seeds`). Earlier rungs use the base config's seed. Default: the base seed
only, one trial per point.
"""

from __future__ import annotations

import copy
import json
import math
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qtrigger.config import QUANT_KEYS

LAYER_PREFIX = "quantization.layers."
PER_LAYER_SPARSITY = "pruning.layers"
SEED_KEY = "training.seed"
METHOD_KEY = "quantization.method"
CHEAP_RUNG = {"hls.csim": False, "hls.rtl": "off", "trigger.enabled": False, "training.float_twin": False}
MAX_DRAWS_PER_TRIAL = 100


class Halving(BaseModel):
    """Successive halving: rung epochs min_epochs, min_epochs*eta, ... then the full epochs."""

    model_config = ConfigDict(extra="forbid")
    min_epochs: int = Field(2, ge=1)
    eta: int = Field(3, ge=2)


class SearchConfig(BaseModel):
    """A seeded sampler over a space of config values (per-layer keys drawn per Dense layer)."""

    model_config = ConfigDict(extra="forbid")
    sampler: Literal["random", "halving"] = "random"
    trials: int = Field(ge=1, le=1000)
    seed: int = 0
    space: dict[str, list] = Field(min_length=1)
    methods: dict[str, dict[str, list]] | None = Field(None, min_length=1)  # quantization.method -> its own space
    halving: Halving = Halving()
    training_seeds: list[int] | None = Field(None, min_length=1, max_length=20)

    @field_validator("training_seeds")
    @classmethod
    def _distinct_seeds(cls, seeds):
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError(f"training seeds must be distinct (got {seeds})")
        return seeds

    @field_validator("space")
    @classmethod
    def _space_keys(cls, space):
        return check_space(space)

    @field_validator("methods")
    @classmethod
    def _method_spaces(cls, methods):
        for name, space in (methods or {}).items():
            if METHOD_KEY in space:
                raise ValueError(f"methods {name}: {METHOD_KEY} is the method's name here, not a key of its space")
            check_space(space, f"methods {name}: ")
        return methods

    @model_validator(mode="after")
    def _seed_not_in_space(self):
        spaces = [self.space, *(self.methods or {}).values()]
        if self.training_seeds and any(SEED_KEY in space for space in spaces):
            raise ValueError(f"space {SEED_KEY} and training_seeds both set the training seed; give one")
        if self.methods and METHOD_KEY in self.space:
            raise ValueError(f"space {METHOD_KEY} and methods both set the quantization method; give one")
        return self

    def seed_settings(self) -> list[dict]:
        """The settings each point of the last rung is trained with: one per training seed ([{}]: the base seed)."""
        return [{SEED_KEY: seed} for seed in self.training_seeds] if self.training_seeds else [{}]

    def point_space(self, method: str | None = None) -> dict[str, list]:
        """The space a point draws from: the shared ``space``, then ``method``'s own keys (``methods``)."""
        return {**self.space, **((self.methods or {}).get(method) or {})}

    def per_trial_keys(self, method: str | None = None) -> list[str]:
        """Space keys drawn once per trial (set as they are)."""
        return [k for k in self.point_space(method) if not k.startswith(LAYER_PREFIX) and k != PER_LAYER_SPARSITY]


def check_space(space: dict[str, list], where: str = "") -> dict[str, list]:
    """Every key has values; per-layer keys are quantization keys; sparsities are in [0, 1) (``where``: prefix)."""
    for key, values in space.items():
        if not values:
            raise ValueError(f"{where}space {key}: empty list of values")
        if key.startswith(LAYER_PREFIX) and key[len(LAYER_PREFIX):] not in QUANT_KEYS:
            raise ValueError(f"{where}space {key}: per-layer keys are {LAYER_PREFIX}<{'|'.join(QUANT_KEYS)}>")
        if key == PER_LAYER_SPARSITY and any(not isinstance(v, (int, float)) or not 0 <= v < 1 for v in values):
            raise ValueError(f"{where}space {key}: sparsities must be numbers in [0, 1) (got {values})")
    return space


def draw_point(search: SearchConfig, rng: random.Random, base_hidden: list[int]) -> dict:
    """One point: its method (with ``methods``), per-trial keys, then ``quantization.layers`` and
    ``pruning.layers`` for its layer count."""
    method = rng.choice(list(search.methods)) if search.methods else None
    space = search.point_space(method)
    point = {METHOD_KEY: method} if method is not None else {}
    point.update({key: copy.deepcopy(rng.choice(space[key])) for key in search.per_trial_keys(method)})
    n_dense = len(point.get("model.hidden", base_hidden)) + 1
    layer_keys = [k for k in space if k.startswith(LAYER_PREFIX)]
    if layer_keys:
        layers = []
        for index in range(n_dense):
            output = index == n_dense - 1
            layers.append({k[len(LAYER_PREFIX):]: rng.choice(space[k]) for k in layer_keys
                           if not (output and k.startswith(LAYER_PREFIX + "activation"))})
        point["quantization.layers"] = layers
    if PER_LAYER_SPARSITY in space:
        point[PER_LAYER_SPARSITY] = [rng.choice(space[PER_LAYER_SPARSITY]) for _ in range(n_dense)]
    return point


def sample_points(search: SearchConfig, base_hidden: list[int]) -> list[dict]:
    """``search.trials`` distinct points (fewer only when the space is smaller), the same for the same seed."""
    rng = random.Random(search.seed)
    points, seen = [], set()
    for _ in range(search.trials * MAX_DRAWS_PER_TRIAL):
        point = draw_point(search, rng, base_hidden)
        key = json.dumps(point, sort_keys=True)
        if key not in seen:
            seen.add(key)
            points.append(point)
            if len(points) == search.trials:
                break
    return points


def rung_epochs(search: SearchConfig, full_epochs: int) -> list[int]:
    """Training epochs of each rung; the last is always the full ``training.epochs``."""
    if search.sampler != "halving":
        return [full_epochs]
    epochs, e = [], search.halving.min_epochs
    while e < full_epochs:
        epochs.append(e)
        e *= search.halving.eta
    return epochs + [full_epochs]


def rung_settings(search: SearchConfig, rung: int, full_epochs: int) -> tuple[dict, dict]:
    """(shown axes, hidden settings) a rung adds to a point: its epochs, and the cheap stages off before the last."""
    epochs = rung_epochs(search, full_epochs)
    if rung == len(epochs) - 1:
        return {}, {}
    return {"training.epochs": epochs[rung]}, dict(CHEAP_RUNG)


def survivors(rows: list[dict], eta: int, metric: str) -> list[int]:
    """Positions of the best ``max(1, n // eta)`` ok rows by ``metric`` (ties: earlier first)."""
    scored = [(-(row.get("metrics") or {}).get(metric), i) for i, row in enumerate(rows)
              if row.get("status") == "ok" and _finite((row.get("metrics") or {}).get(metric))]
    keep = max(1, len(rows) // eta)
    return [i for _, i in sorted(scored)[:keep]]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
