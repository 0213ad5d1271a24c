import numpy as np
import pytest

from qtrigger.fixedpoint import FixedType, parse_fixed, type_for_range


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ap_fixed<16,6>", FixedType(16, 6, True)),
        ("ap_ufixed<8,2,AP_RND_CONV,AP_SAT>", FixedType(8, 2, False, "RND_CONV", "SAT")),
        ("fixed<15,7,RND_CONV,SAT>", FixedType(15, 7, True, "RND_CONV", "SAT")),
        ("ap_int<8>", FixedType(8, 8, True)),
        ("ap_uint<3>", FixedType(3, 3, False)),
    ],
)
def test_parse_valid(text, expected):
    assert parse_fixed(text) == expected


@pytest.mark.parametrize("text", ["ap_fixed<16>", "ap_fixd<16,6>", "ap_fixed<0,0>", "ap_fixed<16,6,AP_FOO>", "16,6", ""])
def test_parse_malformed_names_the_string(text):
    with pytest.raises(ValueError, match="malformed fixed-point type"):
        parse_fixed(text)


def test_round_half_even_and_saturate():
    t = FixedType(4, 2, True, "RND_CONV", "SAT")  # lsb 0.25, range [-2, 1.75]
    values = np.array([0.125, 0.375, -0.125, -0.375, 5.0, -5.0, 1.74])
    assert t.quantize(values).tolist() == [0.0, 0.5, -0.0, -0.5, 1.75, -2.0, 1.75]


def test_truncate_and_wrap():
    t = FixedType(4, 2, True, "TRN", "WRAP")
    assert t.quantize(np.array([0.3, -0.3, 2.0])).tolist() == [0.25, -0.5, -2.0]


def test_type_for_range_is_minimal_and_covers():
    t = type_for_range(-3.0, 5.5, frac=2)
    assert t.signed and t.min_value <= -3.0 and t.max_value >= 5.5
    smaller = FixedType(t.width - 1, t.integer - 1, True)
    assert smaller.max_value < 5.5 or smaller.min_value > -3.0
    u = type_for_range(0.0, 1.0, frac=6)
    assert not u.signed and u.max_value >= 1.0 and str(u) == "ap_ufixed<7,1>"


def test_hls_string_round_trips():
    t = FixedType(18, 9, True, "RND_CONV", "SAT")
    assert parse_fixed(t.hls()) == t
    assert parse_fixed(str(t)) == t
