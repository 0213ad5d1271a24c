"""Constituent (DeepSets) inputs for the exactness checks: synthetic jets and stress jets.

A jet is a (cap, features) array: its real constituents in some slots, zeros in the padded
ones, as the constituent reader delivers them (codes × LSB, ``mask``). The stress jets are the
cases that break a careless implementation: all-padding jets, one-constituent jets, equal
constituents (ties in max pooling), values on the input type's rounding ties and far
beyond its range (saturation), and every real constituent at the largest value.
"""

from __future__ import annotations

import numpy as np

from qtrigger.fixedpoint import FixedType


def synthetic_jets(input_type: FixedType, n: int, cap: int, n_features: int, seed: int,
                   max_real: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` jets of random codes on the input grid, 0..``max_real`` real constituents each; (x, mask)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(input_type.min_code, input_type.max_code + 1, size=(n, cap, n_features))
    n_real = rng.integers(0, (cap if max_real is None else max_real) + 1, size=n)
    mask = np.arange(cap)[None, :] < n_real[:, None]
    return codes * input_type.lsb * mask[..., None], mask


def scatter_padding(x: np.ndarray, mask: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every jet's slots in a random order: real constituents permuted, padding moved between them."""
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random(mask.shape), axis=1)
    return np.take_along_axis(x, order[..., None], axis=1), np.take_along_axis(mask, order, axis=1)


def stress_jets(input_type: FixedType, cap: int, n_features: int, n: int, seed: int) -> np.ndarray:
    """``n`` stress jets: empty, single-constituent, duplicated constituents, rounding ties and saturation."""
    rng = np.random.default_rng(seed)
    per = max(1, n // 6)
    base, mask = synthetic_jets(input_type, 5 * per, cap, n_features, seed + 1)
    real = mask[..., None]
    empty = np.zeros((per, cap, n_features))
    single = synthetic_jets(input_type, per, cap, n_features, seed + 2, max_real=1)[0]
    duplicated = np.repeat(base[:per, :1], cap, axis=1) * mask[:per, :, None]
    ties = (base[per:2 * per] + input_type.lsb / 2 * rng.choice([-1.0, 1.0], size=base[:per].shape)) * real[per:2 * per]
    scale = rng.uniform(1.0, 4.0, size=base[:per].shape) * rng.choice([-1.0, 1.0], size=base[:per].shape)
    saturated = input_type.max_value * scale * real[2 * per:3 * per]
    extreme = np.where(rng.random(base[:per].shape) < 0.5, input_type.min_value, input_type.max_value)
    full = extreme * real[3 * per:4 * per]
    full_cap = np.full((per, cap, n_features), input_type.max_value)
    return np.concatenate([empty, single, duplicated, ties, saturated, full, full_cap])


def set_stress_inputs(input_type: FixedType, x: np.ndarray, n: int, seed: int,
                      mask_channel: bool = False) -> np.ndarray:
    """``n`` stress jets drawn from real jets ``x``: rounding ties and saturation on their real slots,
    only the first real constituent kept, slots shuffled, and all-padding jets.

    A real slot is one with any nonzero feature (an all-zero slot is padding: φ(0), as in Keras).
    With ``mask_channel`` the last feature is a kept 0/1 mask (:class:`qtrigger.emulate.sets.MaskProduct`):
    it marks the real slots, ties and saturation leave it alone, and the all-padding jets keep their
    constituents' values under an all-zero mask.
    """
    rng = np.random.default_rng(seed)
    base = x[rng.integers(0, len(x), size=max(5, n))]
    n_features = base.shape[2] - int(mask_channel)
    real = base[..., -1] > 0 if mask_channel else (base != 0).any(axis=2)
    parts = np.array_split(np.arange(len(base)), 5)
    ties = base.copy()
    ties[..., :n_features] = (base[..., :n_features] + input_type.lsb / 2 * rng.choice(
        [-1.0, 1.0], size=base[..., :n_features].shape)) * real[..., None]
    saturated = base.copy()
    m = len(base)
    where = np.arange(m), rng.integers(0, base.shape[1], m), rng.integers(0, n_features, m)
    saturated[where] = rng.choice([-1.0, 1.0], m) * input_type.max_value * rng.uniform(1, 4, m)
    first = base * (np.arange(base.shape[1])[None, :] == real.argmax(axis=1)[:, None])[..., None]
    shuffled = scatter_padding(base, real, seed)[0]
    empty = np.zeros_like(base)
    if mask_channel:
        empty[..., :n_features] = base[..., :n_features]
    pieces = [ties, saturated, first, shuffled, empty]
    return np.concatenate([piece[index] for piece, index in zip(pieces, parts)])[:n]
