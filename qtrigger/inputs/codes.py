"""Inputs fixed-point at the source, as the firmware receives them (see docs/preprocessing.md).

Each feature is an integer code in its own word (LSB, bits, signedness), rounded half to
even and saturated; the network sees ``code * 2**-shift``, one common input type.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qtrigger.config import FeaturesConfig
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.rundir import atomic_write_text


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


def saturated_fractions(raw: np.ndarray, features: FeaturesConfig, names: list[str]) -> dict[str, float]:
    """Per feature, the fraction of jets whose code falls outside its word and is saturated."""
    out = {}
    for column, name in enumerate(names):
        fmt = features.format_of(name)
        lo, hi = feature_code_range(fmt.bits, fmt.signed)
        codes = np.rint(raw[:, column].astype(np.float64) / fmt.lsb)
        out[name] = float(np.mean((codes < lo) | (codes > hi))) if len(codes) else 0.0
    return out


SATURATION_FACTOR = 3.0
SATURATION_FLOOR = 0.01  # above this fraction of jets a saturating feature is warned about
SATURATION_REFUSED = 0.10  # above this fraction of training jets a run is refused (unless intended)


def training_saturation(saturated: dict[str, float] | None, intended: list[str]) -> list[str]:
    """Warnings for features saturating > 1 % of training jets; > 10 % is an error unless ``intended``.

    A feature saturating that often is usually in the wrong units (MeV for GeV) or word:
    its value no longer reaches the network. ``intended``: ``features.saturation_intended``.
    """
    warnings = []
    for name, fraction in (saturated or {}).items():
        if fraction > SATURATION_REFUSED and name not in intended:
            raise QTriggerError(f"{name}: {100 * fraction:.1f} % of training jets saturate its input word (> "
                                f"{100 * SATURATION_REFUSED:.0f} %); check its units and features.formats.{name}, or "
                                f"list it in features.saturation_intended if this is intended")
        if fraction > SATURATION_FLOOR:
            note = " (features.saturation_intended)" if name in intended else "; check its units and format"
            warnings.append(f"{name}: {100 * fraction:.1f} % of training jets saturate its input word{note}")
    return warnings


def saturation_warnings(observed: dict[str, float], trained: dict[str, float] | None) -> list[str]:
    """Features saturating more than 3x as often as on the training split and above 1 % (e.g. MeV for GeV)."""
    warnings = []
    for name, fraction in observed.items():
        reference = (trained or {}).get(name, 0.0)
        if fraction > SATURATION_FLOOR and fraction > SATURATION_FACTOR * reference:
            warnings.append(f"{name}: {100 * fraction:.1f} % of jets saturate its input word (training split: "
                            f"{100 * reference:.2f} %); check the units of this file")
    return warnings


@dataclass
class Preprocessor:
    """Fitted power-of-two shifts and the common input type they imply."""

    names: list[str]
    shifts: list[int]
    code_min: list[int]
    code_max: list[int]
    lsb: list[float]
    saturated_fraction: dict[str, float] | None = None  # on the training split, per feature

    @classmethod
    def fit(cls, codes: np.ndarray, features: FeaturesConfig, names: list[str], raw: np.ndarray | None = None) -> "Preprocessor":
        """Choose each shift so the feature's spread in network units is O(1) (or use configured shifts).

        ``raw`` (the same jets' physical values) records how often each feature saturates.
        """
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
        saturated = saturated_fractions(raw, features, names) if raw is not None else None
        return cls(list(names), shifts, code_min, code_max, lsbs, saturated)

    @property
    def input_type(self) -> FixedType:
        """Signed type holding every feature word at its shift exactly (RND_CONV, SAT as QKeras)."""
        frac = max(self.shifts)
        magnitude = max(max(abs(lo), hi + 1) * 2.0 ** -s for lo, hi, s in zip(self.code_min, self.code_max, self.shifts))
        integer = max(0, math.ceil(math.log2(magnitude)))  # excluding sign
        return FixedType(1 + integer + frac, 1 + integer, True, "RND_CONV", "SAT")

    def word_types(self) -> list[FixedType]:
        """Each feature's own word in network units: its code range at its shift (TRN, SAT), e.g. a 10-bit
        unsigned pT code at shift 4 is ``ap_ufixed<10,6>``. What the hardware receives per field; the
        common :attr:`input_type` holds every one of them exactly."""
        words = []
        for lo, hi, shift in zip(self.code_min, self.code_max, self.shifts):
            signed = lo < 0
            width = max(int(hi).bit_length(), (-int(lo) - 1).bit_length() if signed else 0, 1) + int(signed)
            words.append(FixedType(width, width - int(shift), signed, "TRN", "SAT"))
        return words

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Integer codes → network inputs ``code * 2**-shift`` (exact in float32 and float64)."""
        return codes.astype(np.float64) * np.exp2(-np.asarray(self.shifts, dtype=np.float64))

    def save(self, path: Path) -> None:
        """Write the fitted preprocessing as JSON."""
        payload = asdict(self) | {"input_type": str(self.input_type)}
        if self.saturated_fraction is None:
            payload.pop("saturated_fraction")
        atomic_write_text(path, json.dumps(payload, indent=2))

    @classmethod
    def load(cls, path: Path) -> "Preprocessor":
        """Read a preprocessing JSON written by :meth:`save`."""
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def from_json(cls, payload: dict) -> "Preprocessor":
        """From the content of ``preprocessing.json`` (files without saturation fractions too)."""
        payload = dict(payload)
        payload.pop("input_type", None)
        preprocessor = cls(**payload)
        if len({len(preprocessor.names), len(preprocessor.shifts), len(preprocessor.code_min),
                len(preprocessor.code_max), len(preprocessor.lsb)}) != 1:
            raise ValueError("per-feature lists differ in length")
        return preprocessor
