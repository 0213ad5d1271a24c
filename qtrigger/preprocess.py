"""Inputs fixed-point at the source, as the firmware receives them.

Each feature arrives as an integer code in its own word (``FeatureFormat``: LSB, bits,
signedness), rounded half to even (as QKeras and ``AP_RND_CONV`` round) and saturated.
The network sees ``code * 2**-shift`` per feature: a power-of-two shift is free wiring
in firmware, so the only "scaling" is a bit position, and every value lands exactly on
the grid of one common input type. That type is the QKeras input quantizer's
``quantized_bits(width, integer)`` and the hls4ml input type, derived here once.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qtrigger.config import FeaturesConfig
from qtrigger.fixedpoint import FixedType


def feature_code_range(bits: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest integer code of a feature word."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def to_feature_codes(raw: np.ndarray, features: FeaturesConfig, names: list[str]) -> np.ndarray:
    """Physical values → integer codes per feature word (round half to even, saturate)."""
    codes = np.empty(raw.shape, dtype=np.int64)
    for column, name in enumerate(names):
        fmt = features.format_of(name)
        lo, hi = feature_code_range(fmt.bits, fmt.signed)
        codes[:, column] = np.clip(np.rint(raw[:, column].astype(np.float64) / fmt.lsb), lo, hi)
    return codes


@dataclass
class Preprocessor:
    """Fitted power-of-two shifts and the common input type they imply."""

    names: list[str]
    shifts: list[int]
    code_min: list[int]
    code_max: list[int]
    lsb: list[float]

    @classmethod
    def fit(cls, codes: np.ndarray, features: FeaturesConfig, names: list[str]) -> "Preprocessor":
        """Choose each shift so the feature's spread in network units is O(1) (or use configured shifts)."""
        shifts, code_min, code_max, lsbs = [], [], [], []
        for column, name in enumerate(names):
            fmt = features.format_of(name)
            lo, hi = feature_code_range(fmt.bits, fmt.signed)
            if features.shifts and name in features.shifts:
                shift = features.shifts[name]
            else:
                spread = float(np.std(codes[:, column])) if len(codes) else 1.0
                shift = max(0, round(math.log2(spread))) if spread > 0 else 0
            shifts.append(int(shift))
            code_min.append(lo)
            code_max.append(hi)
            lsbs.append(fmt.lsb)
        return cls(list(names), shifts, code_min, code_max, lsbs)

    @property
    def input_type(self) -> FixedType:
        """Signed type holding every feature word at its shift exactly (RND_CONV, SAT as QKeras)."""
        frac = max(self.shifts)
        magnitude = max(max(abs(lo), hi + 1) * 2.0 ** -s for lo, hi, s in zip(self.code_min, self.code_max, self.shifts))
        integer = max(0, math.ceil(math.log2(magnitude)))  # excluding sign
        return FixedType(1 + integer + frac, 1 + integer, True, "RND_CONV", "SAT")

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Integer codes → network inputs ``code * 2**-shift`` (exact in float32 and float64)."""
        return codes.astype(np.float64) * np.exp2(-np.asarray(self.shifts, dtype=np.float64))

    def save(self, path: Path) -> None:
        """Write the fitted preprocessing as JSON."""
        payload = asdict(self) | {"input_type": str(self.input_type)}
        Path(path).write_text(json.dumps(payload, indent=2))

    @classmethod
    def load(cls, path: Path) -> "Preprocessor":
        """Read a preprocessing JSON written by :meth:`save`."""
        payload = json.loads(Path(path).read_text())
        payload.pop("input_type", None)
        return cls(**payload)
