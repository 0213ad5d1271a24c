"""The exact integer reference (after ``models``): a trained QKeras model read into int64 arithmetic.

- :mod:`~qtrigger.emulate.network` — :class:`~qtrigger.emulate.network.QuantizedNetwork`, Dense/ReLU chains,
  every precision derived once from the trained quantizers;
- :mod:`~qtrigger.emulate.sets` — set networks (φ per slot, pooling, ρ) and
  :func:`~qtrigger.emulate.sets.extract_any_network`, which reads whichever a model is.

Firmware, RTL and the trigger's accept bit are all checked against this reference.
"""
