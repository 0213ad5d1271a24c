"""The event seed's front end and comparator as shallow da4ml logic: gates, HT, jet count, the input program, accept.

da4ml counts adder levels: one per add, subtract or 2:1 select (``msb_mux``), none for a comparison with a
constant (a constant add whose sign bit is read), a shift by a constant or a bit slice; the pipeline is cut every
``latency_cutoff`` levels. So the logic here is written for depth, with the values of
:mod:`qtrigger.inputs.event_ops` unchanged (the event RTL is checked against that Python chain on every streamed row):

- sums (HT, the jet count, the preselection's jet count) are balanced trees
  (:func:`~qtrigger.emulate.score.balanced_sum`: 3 levels for 8 slots, not 7);
- a word gate ``word != 0`` of an unsigned word is ``1 - (word < 1)``: no level;
- Delta-phi (``d = value * scale - ref * ref_scale``, one wrap at +-H, saturated to ``[lo, hi]``) is one balanced
  tree of selects over the intervals of ``d`` on which the result is a constant or ``d`` plus a constant: every
  comparison is with a constant, so the wrap and the saturation take ceil(log2 intervals) levels (2 for the
  calorimeter grid, where no saturation is reachable) instead of four in sequence. A leaf ``d + c`` is cut to the
  output word (a bit slice, exact on its own interval), so the network's input quantizer adds no logic;
- the accept bit without a preselection is ``1 - (score < threshold)``: no level.
"""

from __future__ import annotations

import numpy as np

from qtrigger.emulate.score import balanced_sum


def const(value, hwconf):
    """A constant as a da4ml variable."""
    from da4ml.trace import FixedVariable

    return FixedVariable.from_const(value, hwconf=hwconf)


class Not:
    """``1 - var`` of a one-bit variable, kept symbolic: as a select condition it swaps the two branches (da4ml's
    ``msb_mux`` reads the bit of ``var`` itself), as a value it is ``1 - var`` (no level either way)."""

    def __init__(self, var):
        self.var = var


def bit(value, hwconf):
    """A 0/1 value as a da4ml variable (a Python bool when the ranges decide it, or a :class:`Not`)."""
    if isinstance(value, Not):
        return 1 - value.var
    return const(int(value), hwconf) if isinstance(value, (bool, int, np.bool_)) else value


def select(cond, a, b, hwconf):
    """``cond ? a : b`` for a 0/1 ``cond`` (a Python bool, a one-bit da4ml variable or a :class:`Not`): one level
    unless decided."""
    if isinstance(cond, (bool, np.bool_)):
        return a if cond else b
    if isinstance(cond, Not):
        return select(cond.var, b, a, hwconf)
    a, b = (1 - v.var if isinstance(v, Not) else const(v, hwconf) if isinstance(v, (int, float)) else v for v in (a, b))
    return cond.msb_mux(a, b)


def below(x, c):
    """1 when ``x`` < ``c`` (a Python bool when the ranges decide it); no level when ``c`` is a constant."""
    low = (x - c).is_negative()
    return bool(low) if isinstance(low, (bool, np.bool_)) else low


def negated(b):
    """``1 - b`` of a 0/1 value (a bool, a one-bit variable or a :class:`Not`; no level)."""
    if isinstance(b, (bool, np.bool_)):
        return not b
    return b.var if isinstance(b, Not) else Not(b)


def gate(g, valid: list, ports: list, hw):
    """A gate of the program as a 0/1 value: a slot's valid bit, or port word != 0."""
    if g.kind == "slot":
        return valid[g.index]
    word = ports[g.index]
    negative, positive = below(word, 0), negated(below(word, 1))
    if isinstance(negative, bool):  # an unsigned word: word >= 1, no level
        return True if negative else positive
    return select(negative, 1, positive, hw)


def ht_count_preselection(valid: list, pt: list, spec, preselection, hw):
    """HT word (saturated), jet count (saturated to its input word) and the preselection bit."""
    words = spec.words
    ht_jet = int(words.pt_code(words.ht_jet_pt_gev))
    ht = balanced_sum([select(below(p, ht_jet), 0, select(ok, p, 0, hw), hw) for ok, p in zip(valid, pt)])
    ht = ht.min_of(words.ht_max_code)
    count = balanced_sum(valid).min_of(spec.count_max)
    presel_jet = int(preselection.jet_pt_code or 0)
    passing = balanced_sum([select(below(p, presel_jet), 0, ok, hw) for ok, p in zip(valid, pt)])
    presel = select(below(passing, int(preselection.n_jets)), 0,
                    select(below(ht, int(preselection.ht_code or 0)), 0, 1, hw), hw)
    return ht, count, presel


def clipped_wrap_pieces(d_lo: int, d_hi: int, half_turn: int, lo: int,
                        hi: int) -> list[tuple[int, int, int | None, int]]:
    """The intervals of integer ``d`` in [d_lo, d_hi] on which ``clip(wrap(d), lo, hi)`` is ``d + offset``
    (``offset`` set) or the constant ``value``: (first d, last d, offset or None, value), in order."""
    pieces = []
    wraps = ((d_lo, -half_turn - 1, 2 * half_turn), (-half_turn, half_turn - 1, 0), (half_turn, d_hi, -2 * half_turn))
    for a, b, off in wraps:
        a, b = max(a, d_lo), min(b, d_hi)
        for s, e, offset, value in ((a, min(b, lo - off - 1), None, lo), (max(a, lo - off), min(b, hi - off), off, 0),
                                    (max(a, hi - off + 1), b, None, hi)):
            if s > e:
                continue
            if pieces and pieces[-1][2] == offset and (offset is not None or pieces[-1][3] == value) \
                    and pieces[-1][1] + 1 == s:
                pieces[-1] = (pieces[-1][0], e, offset, value)
            else:
                pieces.append((s, e, offset, value))
    return pieces


def _word_kif(lo: int, hi: int) -> tuple[int, int, int]:
    signed = lo < 0
    return int(signed), max(int(hi).bit_length(), (-int(lo) - 1).bit_length() if signed else 0), 0


def clipped_wrap(d, half_turn: int, lo: int, hi: int, hw):
    """``clip(wrap(d), lo, hi)`` of an integer da4ml variable as a balanced select tree (module docstring)."""
    pieces = clipped_wrap_pieces(int(d.low), int(d.high), half_turn, lo, hi)
    k, i, f = _word_kif(lo, hi)

    def tree(part):
        if len(part) == 1:
            _, _, offset, value = part[0]
            return const(value, hw) if offset is None else (d + offset).quantize(k, i, f, "WRAP", "TRN")
        mid = len(part) // 2
        return select(below(d, part[mid][0]), tree(part[:mid]), tree(part[mid:]), hw)

    return tree(pieces)


def program_codes(valid: list, pt: list, ports: list, program, hw) -> list:
    """Every network input code of the program (:mod:`qtrigger.inputs.event_ops`): gated words, Delta-phi on the
    common grid (one wrap at +-H, saturated), 0 where the gate is off."""
    codes = []
    for op in program:
        on = gate(op.gate, valid, ports, hw)
        source = pt[op.index] if op.source == "pt" else ports[op.index]
        p = op.dphi
        if p is None:
            codes.append(select(on, source, 0, hw))
            continue
        ref = select(gate(p.ref_gate, valid, ports, hw), ports[p.ref_port], 0, hw)
        d = (source * p.scale if p.scale != 1 else source) - (ref * p.ref_scale if p.ref_scale != 1 else ref)
        codes.append(select(on, clipped_wrap(d, p.half_turn, p.lo, p.hi, hw), 0, hw))
    return codes


def accept_bit(score, threshold, presel, hw):
    """``presel and score >= threshold`` as a one-bit variable (no select without a preselection)."""
    low = below(score, threshold)
    if isinstance(presel, (bool, int, np.bool_)):
        return bit(negated(low) if presel else False, hw)
    return bit(select(low, 0, presel, hw), hw)
