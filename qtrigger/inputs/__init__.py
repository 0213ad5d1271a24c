"""Inputs (after ``data`` and ``generate``): physical values → fixed-point words at the source → network inputs.

- :mod:`~qtrigger.inputs.codes` — per-feature words (LSB, bits, rounding, saturation) and the power-of-two
  shifts onto one input type (:class:`~qtrigger.inputs.codes.Preprocessor`);
- :mod:`~qtrigger.inputs.seed_jets` — the jets as the seed firmware sees them (pT words, per-event slots, HT);
- :mod:`~qtrigger.inputs.event` — an event's leading jets → Δφ, HT and jet-count codes;
- :mod:`~qtrigger.inputs.object_event` — L1 object groups (``features.objects``) as event inputs, and
  :mod:`~qtrigger.inputs.event_ops`, the input program both event builders hand to the firmware stages;
- :mod:`~qtrigger.inputs.constituent` — a jet's leading constituents as (slots, fields) words.

Which of these a run uses is its input level (:mod:`qtrigger.levels`).
"""
