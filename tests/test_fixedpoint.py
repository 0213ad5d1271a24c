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


@pytest.mark.parametrize(
    "fixed, cpp, qkeras",
    [
        (FixedType(10, 5, True, "RND_CONV", "SAT"), "ap_fixed<10,5,AP_RND_CONV,AP_SAT>", "quantized_bits(10,4,alpha=1)"),
        (FixedType(6, 2, False, "RND_CONV", "SAT"), "ap_ufixed<6,2,AP_RND_CONV,AP_SAT>", "quantized_relu(6,2)"),
        (FixedType(8, 1, True, "RND_CONV", "SAT_SYM"), "ap_fixed<8,1,AP_RND_CONV,AP_SAT_SYM>",
         "quantized_bits(8,0,alpha=1,symmetric=True)"),
    ],
)
def test_cpp_and_qkeras_spellings_round_trip(fixed, cpp, qkeras):
    from qtrigger.fixedpoint import qkeras_quantizer_type

    assert fixed.cpp() == cpp and parse_fixed(cpp) == fixed
    assert fixed.qkeras() == qkeras
    assert qkeras_quantizer_type(fixed.qkeras_quantizer(), "test") == fixed
    assert FixedType.from_qkeras(fixed.qkeras_quantizer(), "test") == fixed


def test_qkeras_spelling_refuses_modes_qkeras_lacks():
    with pytest.raises(ValueError, match=r"QKeras quantizers round half to even and saturate"):
        FixedType(8, 3, True, "TRN", "WRAP").qkeras()


def test_nearest_codes_round_half_to_even_and_count_off_grid():
    t = FixedType(8, 4)  # lsb 1/16
    values = np.array([[1 / 32, 3 / 32, 0.25], [-1 / 32, 100.0, 0.0625]])
    assert t.nearest_codes(values).tolist() == [[0, 2, 4], [0, 1600, 1]]  # no overflow handling
    assert t.count_off_grid(values) == 3
    assert t.to_codes(np.array([0.25, -0.5])).tolist() == [4, -8]
    with pytest.raises(ValueError, match=r"not on the grid of ap_fixed<8,4>"):
        t.to_codes(values)
