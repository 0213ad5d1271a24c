"""The event-input program: how the seed firmware turns its received words into the network's input codes.

Both event-input builders (the jet slots of :mod:`qtrigger.inputs.event`, the L1 object groups of
:mod:`qtrigger.inputs.object_event`) describe their network inputs as a list of :class:`InputOp`; the
accept-bit C++ (:mod:`qtrigger.trigger.event_decision`) and the event RTL (:mod:`qtrigger.trigger.event_rtl`)
each interpret that one list, so a new builder needs no code in either stage. Per event the firmware receives:

- ``valid[s]`` and ``pt[s]`` of every seed slot ``s`` (the seed's jets: HT, jet count and preselection);
- the builder's ``ports``: one integer word each (:meth:`port_words` of the builder).

Each input code, in integer arithmetic (:func:`program_codes` is the numpy reference):

- ``gate``: ``valid[s]`` (``Gate("slot", s)``) or ``ports[p] != 0`` (``Gate("word", p)``);
- value: ``gate ? source : 0`` with ``source`` = ``pt[s]`` or ``ports[p]``;
- with ``dphi``: ``d = value * scale - (ref_gate ? ports[ref] : 0) * ref_scale``; ``d -= 2 H`` if ``d >= H``, else
  ``d += 2 H`` if ``d < -H`` (``H``: the half turn of the common phi grid); saturated to ``[lo, hi]``; 0 when the
  gate is off.

Then the seed's HT word and its filled-slot count (saturated to ``count_max``) are the last two inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Gate:
    """When an input is filled: a seed slot's valid bit (``kind == "slot"``) or a port word != 0 (``"word"``)."""

    kind: str
    index: int

    def on(self, valid: np.ndarray, ports: np.ndarray) -> np.ndarray:
        """Per event: the gate is on."""
        return valid[:, self.index] if self.kind == "slot" else ports[:, self.index] != 0


@dataclass(frozen=True)
class DeltaPhi:
    """Delta-phi to a reference phi word on a common grid (``scale``/``ref_scale``: exact integer factors onto it)."""

    ref_port: int
    ref_gate: Gate
    scale: int
    ref_scale: int
    half_turn: int
    lo: int
    hi: int


@dataclass(frozen=True)
class InputOp:
    """One network input: ``source`` ``"pt"`` (seed slot ``index``'s pT word) or ``"port"`` (port ``index``)."""

    source: str
    index: int
    gate: Gate
    dphi: DeltaPhi | None = None


def wrap_half_turn(d: np.ndarray, half_turn: int) -> np.ndarray:
    """One conditional wrap into [-half_turn, half_turn) (exact for differences of words within one turn)."""
    d = np.asarray(d, dtype=np.int64)
    return np.where(d >= half_turn, d - 2 * half_turn, np.where(d < -half_turn, d + 2 * half_turn, d))


def program_codes(ops: list[InputOp], pt: np.ndarray, valid: np.ndarray, ports: np.ndarray, ht: np.ndarray,
                  count_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Network input codes of every event from the seed slots (``pt``, ``valid``, ``ht``) and the port words, and
    per input whether it saturated (Delta-phi only; the words are saturated where they are made)."""
    n = len(ports)
    codes = np.zeros((n, len(ops) + 2), dtype=np.int64)
    clipped = np.zeros((n, len(ops)), bool)
    valid = np.asarray(valid, bool)
    ports = np.asarray(ports, np.int64)
    for i, op in enumerate(ops):
        on = op.gate.on(valid, ports)
        source = pt[:, op.index] if op.source == "pt" else ports[:, op.index]
        value = np.where(on, source, 0).astype(np.int64)
        if op.dphi is not None:
            p = op.dphi
            ref = np.where(p.ref_gate.on(valid, ports), ports[:, p.ref_port], 0)
            d = wrap_half_turn(value * p.scale - ref * p.ref_scale, p.half_turn)
            clipped[:, i] = on & ((d < p.lo) | (d > p.hi))
            value = np.where(on, np.clip(d, p.lo, p.hi), 0)
        codes[:, i] = value
    codes[:, -2] = ht
    codes[:, -1] = np.minimum(np.asarray(valid).sum(axis=1), count_max)
    return codes, clipped
