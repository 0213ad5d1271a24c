"""Fixed-point facts in one place: types, parsing, exact quantization and range analysis.

Every bit width, integer-bit count, rounding and overflow mode that reaches the hls4ml
config is a :class:`FixedType` made here, either parsed from a config string
(``ap_fixed<16,6>``) or derived from a QKeras quantizer. Nothing else in the package
types a precision by hand.

Conventions follow Xilinx ``ap_fixed<W, I, Q, O>``: ``width`` counts all bits,
``integer`` counts integer bits *including* the sign bit for signed types, so the
fractional bit count is ``width - integer`` and the LSB is ``2**-(width - integer)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from qtrigger.errors import QTriggerError

ROUNDING_MODES = ("TRN", "RND_CONV", "RND", "TRN_ZERO", "RND_ZERO", "RND_MIN_INF", "RND_INF")
SATURATION_MODES = ("WRAP", "SAT", "SAT_SYM", "SAT_ZERO")

_FIXED_RE = re.compile(
    r"^\s*(?:ap_)?(u?)fixed\s*<\s*(-?\d+)\s*,\s*(-?\d+)\s*"
    r"(?:,\s*(?:AP_)?([A-Z_]+)\s*)?(?:,\s*(?:AP_)?([A-Z_]+)\s*)?>\s*$"
)
_INT_RE = re.compile(r"^\s*(?:ap_)?(u?)int\s*<\s*(-?\d+)\s*>\s*$")


@dataclass(frozen=True)
class FixedType:
    """An ``ap_fixed``/``ap_ufixed`` type with its rounding and overflow modes."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    saturation: str = "WRAP"

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"fixed-point width must be >= 1, got {self.width}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {self.rounding!r}; expected one of {ROUNDING_MODES}")
        if self.saturation not in SATURATION_MODES:
            raise ValueError(f"unknown overflow mode {self.saturation!r}; expected one of {SATURATION_MODES}")

    @property
    def frac(self) -> int:
        """Number of fractional bits (may be negative)."""
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        """Value of one least-significant bit."""
        return 2.0 ** -self.frac

    @property
    def min_code(self) -> int:
        """Smallest integer code (value / LSB)."""
        if not self.signed:
            return 0
        if self.saturation == "SAT_SYM":
            return -(2 ** (self.width - 1)) + 1
        return -(2 ** (self.width - 1))

    @property
    def max_code(self) -> int:
        """Largest integer code (value / LSB)."""
        return 2 ** (self.width - 1) - 1 if self.signed else 2**self.width - 1

    @property
    def min_value(self) -> float:
        """Smallest representable value."""
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        """Largest representable value."""
        return self.max_code * self.lsb

    def hls(self) -> str:
        """The hls4ml precision string, e.g. ``fixed<16,6,RND_CONV,SAT>``."""
        base = f"{'' if self.signed else 'u'}fixed<{self.width},{self.integer}"
        if self.rounding == "TRN" and self.saturation == "WRAP":
            return base + ">"
        return base + f",{self.rounding},{self.saturation}>"

    def __str__(self) -> str:
        return "ap_" + self.hls()

    def cpp(self) -> str:
        """The C++ type with explicit modes, e.g. ``ap_fixed<16,6,AP_RND_CONV,AP_SAT>``."""
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer},AP_{self.rounding},AP_{self.saturation}>"

    def qkeras(self) -> str:
        """The QKeras quantizer that rounds and clips exactly to this type, as QKeras spells it.

        Signed: ``quantized_bits(W,I-1,alpha=1)`` (QKeras counts integer bits without the
        sign); unsigned: ``quantized_relu(W,I)``. Only RND_CONV with SAT (or SAT_SYM, signed)
        has a QKeras equivalent; other modes raise ValueError.
        """
        if self.rounding != "RND_CONV" or self.saturation not in ("SAT", "SAT_SYM") or \
                (self.saturation == "SAT_SYM" and not self.signed):
            raise ValueError(f"{self}: QKeras quantizers round half to even and saturate (RND_CONV, SAT/SAT_SYM)")
        if not self.signed:
            return f"quantized_relu({self.width},{self.integer})"
        symmetric = ",symmetric=True" if self.saturation == "SAT_SYM" else ""
        return f"quantized_bits({self.width},{self.integer - 1},alpha=1{symmetric})"

    def qkeras_quantizer(self):
        """The QKeras quantizer object of :meth:`qkeras` (imports QKeras)."""
        import qkeras

        return qkeras.get_quantizer(self.qkeras())

    @classmethod
    def from_qkeras(cls, quantizer, where: str) -> "FixedType":
        """The exact type a QKeras quantizer rounds and clips to (see :func:`qkeras_quantizer_type`)."""
        return qkeras_quantizer_type(quantizer, where)

    def nearest_codes(self, values: np.ndarray) -> np.ndarray:
        """Integer codes nearest to float values (half to even), without overflow handling."""
        return np.rint(np.asarray(values, dtype=np.float64) * 2.0**self.frac).astype(np.int64)

    def count_off_grid(self, values: np.ndarray) -> int:
        """How many values do not sit exactly on this type's grid."""
        scaled = np.asarray(values, dtype=np.float64) * 2.0**self.frac
        return int(np.count_nonzero(np.rint(scaled) != scaled))

    def to_codes(self, values: np.ndarray) -> np.ndarray:
        """Integer codes of values already on this type's grid (raises if they are not)."""
        scaled = np.asarray(values, dtype=np.float64) * 2.0**self.frac
        off = np.rint(scaled) != scaled
        if off.any():
            bad = np.flatnonzero(off.ravel())[0]
            raise ValueError(f"value {np.ravel(values)[bad]!r} is not on the grid of {self}")
        return self.nearest_codes(values)

    def quantize_codes(self, values: np.ndarray) -> np.ndarray:
        """Integer codes of arbitrary float values after this type's rounding and overflow."""
        scaled = np.asarray(values, dtype=np.float64) * 2.0**self.frac
        if self.rounding == "RND_CONV":
            codes = np.rint(scaled)  # half to even, as tf.round and AP_RND_CONV
        elif self.rounding == "TRN":
            codes = np.floor(scaled)
        elif self.rounding == "RND":
            codes = np.floor(scaled + 0.5)
        else:
            raise NotImplementedError(f"rounding {self.rounding} is not emulated")
        return self.overflow_codes(codes.astype(np.int64))

    def overflow_codes(self, codes: np.ndarray) -> np.ndarray:
        """Apply this type's overflow mode to integer codes on its grid."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.saturation in ("SAT", "SAT_SYM"):
            return np.clip(codes, self.min_code, self.max_code)
        if self.saturation == "WRAP":
            span = 2**self.width
            wrapped = np.mod(codes - self.min_code, span) + self.min_code
            return wrapped.astype(np.int64)
        raise NotImplementedError(f"overflow mode {self.saturation} is not emulated")

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Values after this type's rounding and overflow, as float64."""
        return self.quantize_codes(values).astype(np.float64) * self.lsb

    def with_modes(self, rounding: str, saturation: str) -> "FixedType":
        """The same bits with other rounding/overflow modes."""
        return FixedType(self.width, self.integer, self.signed, rounding, saturation)


def parse_fixed(text: str) -> FixedType:
    """Parse ``ap_fixed<W,I[,Q[,O]]>``, ``ap_ufixed<...>``, ``ap_int<W>`` or ``fixed<...>``.

    Raises ValueError with a message that says what was expected.
    """
    expected = "expected ap_fixed<W,I>, ap_ufixed<W,I> (optionally ,ROUNDING,OVERFLOW) or ap_int<W> with W >= 1"
    match = _FIXED_RE.match(str(text))
    if match:
        unsigned, width, integer, rounding, saturation = match.groups()
        width, integer = int(width), int(integer)
        rounding = rounding or "TRN"
        saturation = saturation or "WRAP"
    else:
        match = _INT_RE.match(str(text))
        if not match:
            raise ValueError(f"malformed fixed-point type {text!r}: {expected}")
        unsigned, width = match.groups()
        width = int(width)
        integer, rounding, saturation = width, "TRN", "WRAP"
    if width < 1:
        raise ValueError(f"malformed fixed-point type {text!r}: width {width} must be >= 1")
    try:
        return FixedType(width, integer, not unsigned, rounding, saturation)
    except ValueError as err:
        raise ValueError(f"malformed fixed-point type {text!r}: {err}") from None


def type_for_range(lo: float, hi: float, frac: int, rounding: str = "TRN", saturation: str = "WRAP") -> FixedType:
    """Smallest type with ``frac`` fractional bits that holds every value in [lo, hi]."""
    lo_code = math.floor(lo * 2.0**frac)
    hi_code = math.ceil(hi * 2.0**frac)
    signed = lo_code < 0
    if signed:
        magnitude = max(-lo_code, hi_code + 1)
        width = max(1, math.ceil(math.log2(magnitude))) + 1 if magnitude > 1 else 2
    else:
        width = max(1, math.ceil(math.log2(hi_code + 1))) if hi_code > 0 else 1
    return FixedType(width, width - frac, signed, rounding, saturation)


def exact_type_for_values(values: np.ndarray, max_frac: int = 24, max_width: int = 32, rounding: str = "TRN",
                          saturation: str = "WRAP") -> FixedType | None:
    """Smallest type holding every one of ``values`` exactly, or None beyond ``max_frac``/``max_width`` bits."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        return None
    for frac in range(max_frac + 1):
        scaled = values * 2.0**frac
        if np.array_equal(np.rint(scaled), scaled):
            fixed = type_for_range(float(values.min()), float(values.max()), frac, rounding, saturation)
            return fixed if fixed.width <= max_width else None
    return None


def qkeras_quantizer_type(quantizer, where: str) -> FixedType:
    """The exact fixed-point type a QKeras quantizer rounds and clips to.

    ``quantized_bits`` and ``quantized_relu`` round half to even (``tf.round``) and clip,
    i.e. ``AP_RND_CONV`` and ``AP_SAT``. Settings that cannot be reproduced exactly in
    firmware raise QTriggerError naming ``where`` (the layer and argument).
    """
    name = type(quantizer).__name__
    if name == "quantized_bits":
        alpha = getattr(quantizer, "alpha", None)
        if alpha not in (None, 1, 1.0):
            raise QTriggerError(
                f"{where}: quantized_bits alpha={alpha!r} cannot be converted exactly; use alpha=1 or None"
            )
        if getattr(quantizer, "use_stochastic_rounding", False):
            raise QTriggerError(f"{where}: stochastic rounding cannot be reproduced in firmware")
        bits, integer = int(quantizer.bits), int(quantizer.integer)
        if quantizer.keep_negative:
            saturation = "SAT_SYM" if getattr(quantizer, "symmetric", False) else "SAT"
            return FixedType(bits, integer + 1, True, "RND_CONV", saturation)
        return FixedType(bits, integer, False, "RND_CONV", "SAT")
    if name == "quantized_relu":
        if getattr(quantizer, "negative_slope", 0.0):
            raise QTriggerError(f"{where}: quantized_relu with negative_slope is not supported; use 0")
        if getattr(quantizer, "use_sigmoid", 0) or getattr(quantizer, "use_stochastic_rounding", False):
            raise QTriggerError(f"{where}: quantized_relu use_sigmoid/stochastic rounding is not exact in firmware")
        if getattr(quantizer, "relu_upper_bound", None) is not None and not quantizer.is_quantized_clip:
            raise QTriggerError(f"{where}: quantized_relu relu_upper_bound is not supported")
        bits, integer = int(quantizer.bits), int(quantizer.integer)
        return FixedType(bits, integer, False, "RND_CONV", "SAT")
    raise QTriggerError(
        f"{where}: quantizer {name} is not supported for exact conversion; use quantized_bits or quantized_relu"
    )
