"""Input levels (after ``trigger`` in the flow, before ``run``): what one network row is, and everything a run
asks of it. ``features.level`` picks one from the registry (:func:`~qtrigger.levels.base.level_for`):

- ``jet`` (:mod:`~qtrigger.levels.jet`): a jet's summary features;
- ``event`` (:mod:`~qtrigger.levels.event`): an event's leading jets, Δφ, HT and jet count;
- ``constituent`` (:mod:`~qtrigger.levels.constituent`): a jet's leading constituents;
- ``event`` with ``training.objective: autoencoder`` (:mod:`~qtrigger.levels.anomaly`): background events, no
  labels, a VAE encoder scored by sum mu^2 (the ``anomaly`` seed).

A new level is one module with an :class:`~qtrigger.levels.base.InputLevel` subclass and one
:func:`~qtrigger.levels.base.register_level` line here (or in the user's own code).
"""

from qtrigger.levels.anomaly import AutoencoderEventLevel
from qtrigger.levels.base import InputLevel, Prepared, level_for, register_level, register_objective_level
from qtrigger.levels.constituent import ConstituentLevel
from qtrigger.levels.event import EventLevel
from qtrigger.levels.jet import JetLevel

register_level(JetLevel())
register_level(EventLevel())
register_level(ConstituentLevel())
register_objective_level("event", "autoencoder", AutoencoderEventLevel())

__all__ = ["InputLevel", "Prepared", "level_for", "register_level"]
