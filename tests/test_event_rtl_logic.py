"""The event seed's shallow front-end logic (qtrigger.trigger.event_rtl_logic): the same values as the Python
program (qtrigger.inputs.event_ops) at fewer adder levels."""

import numpy as np
import pytest

from qtrigger.emulate.score import balanced_sum
from qtrigger.inputs.event_ops import Gate, wrap_half_turn
from qtrigger.trigger import event_rtl_logic as logic

pytest.importorskip("da4ml")


def _ports(kifs):
    from da4ml.trace import FixedVariableArray, HWConfig

    from qtrigger.firmware.rtl import HWCONFIG, SOLVER_OPTIONS

    k, i, f = (np.array(c) for c in zip(*kifs))
    inputs = FixedVariableArray.from_kif(k, i, f, HWConfig(*HWCONFIG), solver_options=dict(SOLVER_OPTIONS))
    return inputs, list(inputs._vars.ravel())


def _comb(inputs, outputs):
    from da4ml.trace import FixedVariableArray, comb_trace

    from qtrigger.firmware.rtl import SOLVER_OPTIONS

    return comb_trace(inputs, FixedVariableArray(np.array(outputs, dtype=object), dict(SOLVER_OPTIONS)))


@pytest.mark.parametrize("word, scale, half_turn, lo, hi, levels", [
    ((1, 8, 0), 1, 72, -128, 127, 2),     # calo - calo: d in [-256, 255], no saturation reachable: 3 intervals
    ((1, 11, 0), 1, 288, -512, 511, 3),   # calo x 4 - muon: the wrap and both saturations are reachable
    ((1, 9, 0), 1, 72, -60, 50, 4),       # a narrow output word: 9 intervals
])
def test_delta_phi_select_tree_is_clip_of_wrap_on_every_difference(word, scale, half_turn, lo, hi, levels):
    """Every integer d of the word gives clip(wrap(d), lo, hi) (the Python program's value), ceil(log2 intervals)
    select levels deep."""
    inputs, (d,) = _ports([word])
    out = logic.clipped_wrap(d * scale, half_turn, lo, hi, d.hwconf)
    comb = _comb(inputs, [out])
    values = np.arange(int(d.low), int(d.high) + 1)
    got = np.array([float(comb([v])[0]) for v in values])
    want = np.clip(wrap_half_turn(values * scale, half_turn), lo, hi)
    assert np.array_equal(got, want) and float(out.latency) == levels
    bits = max(hi.bit_length(), (-lo - 1).bit_length())  # the leaves are cut to the output word: no wider range
    assert -(2**bits) <= float(out.low) and float(out.high) <= 2**bits - 1


def test_gates_sums_and_accept_are_shallow_and_exact():
    """word != 0 gates (unsigned: no level; signed: one), an 8-term balanced sum (3 levels, not 7) and the accept bit
    without a preselection (only the score - threshold subtract) give the program's values."""
    inputs, (u, s, t, *xs) = _ports([(0, 8, 0), (1, 7, 0), (0, 6, 0)] + [(0, 4, 0)] * 8)
    hw = u.hwconf
    on_u, on_s = logic.gate(Gate("word", 0), [], [u, s], hw), logic.gate(Gate("word", 1), [], [u, s], hw)
    gated = [logic.select(on_u, t, 0, hw), logic.select(on_s, t, 0, hw)]
    total = balanced_sum(xs)
    accept = logic.accept_bit(total, t, 1, hw)
    assert float(logic.bit(on_u, hw).latency) == 0 and float(gated[0].latency) == 1 and float(gated[1].latency) == 2
    assert float(total.latency) == 3 and float(accept.latency) == 4
    comb = _comb(inputs, [logic.bit(on_u, hw), logic.bit(on_s, hw), *gated, total, accept])
    rng = np.random.default_rng(0)
    rows = [[0, 0, 9] + [1] * 8, [255, -128, 63] + [15] * 8, [1, -1, 5] + [0] * 8, [0, 5, 7] + [1, 1] + [0] * 6]
    rows += [[int(rng.integers(0, 3)), int(rng.integers(-2, 3)), int(rng.integers(0, 64))] +
             rng.integers(0, 16, 8).tolist() for _ in range(200)]
    for row in rows:
        want = [row[0] != 0, row[1] != 0, row[2] * (row[0] != 0), row[2] * (row[1] != 0), sum(row[3:]),
                sum(row[3:]) >= row[2]]
        assert [float(v) for v in comb(row)] == [float(w) for w in want], row
