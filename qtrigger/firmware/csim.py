"""C-simulation of a converted project, the code-by-code comparison, and the stress inputs.

Every comparison is on integer codes of the network's output type against the exact
int64 emulation (:meth:`~qtrigger.emulate.network.QuantizedNetwork.forward_codes`). This module
is the one owner of the stress inputs (rows on input rounding ties and beyond the input
type's range) used by the C-simulation check and by the RTL check.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qtrigger.emulate.hgq import HGQNetwork
from qtrigger.emulate.network import QuantizedNetwork
from qtrigger.firmware.convert import convert
from qtrigger.firmware.sets import set_stress_inputs
from qtrigger.fixedpoint import FixedType

REFERENCE = "integer emulation (exact, int64)"
STRESS_WHAT = "inputs half an LSB off real jets (rounding ties) and beyond the input type's range"
QKERAS_FLOAT32_NOTE = "QKeras evaluated in float32 vs the exact integer reference"


@dataclass
class CsimComparison:
    """C-simulation vs the exact integer reference, as integer codes of the output type."""

    jets: int
    mismatched_jets: int
    max_abs_diff_lsb: int
    output_type: str
    csim_codes: np.ndarray
    reference_codes: np.ndarray

    def summary(self) -> dict:
        """JSON-ready numbers."""
        return {
            "jets": self.jets,
            "mismatched_jets": self.mismatched_jets,
            "max_abs_diff_lsb": self.max_abs_diff_lsb,
            "output_type": self.output_type,
            "reference": REFERENCE,
        }

    def differing_rows(self) -> np.ndarray:
        """Indices of the rows whose codes differ anywhere."""
        return np.flatnonzero((self.csim_codes != self.reference_codes).any(axis=1))


def csim_predict_codes(project, network: QuantizedNetwork, x: np.ndarray, strict: bool = True) -> np.ndarray:
    """Run every row through the compiled C-simulation; return output codes (int64).

    With ``strict``, an output off the grid of the exact output type raises; otherwise it
    is rounded to the nearest code (used when diagnosing deliberately altered types).
    """
    outputs = np.asarray(project.model.predict(network.model_inputs(x)), dtype=np.float64)
    outputs = outputs.reshape(len(x), -1)
    off_grid = network.output_type.count_off_grid(outputs)
    if off_grid and strict:
        raise RuntimeError(f"C-simulation returned {off_grid} values off the grid of {network.output_type}")
    return network.output_type.nearest_codes(outputs)


def compare_codes(csim_codes: np.ndarray, reference_codes: np.ndarray, output_type) -> CsimComparison:
    """Count jets whose output codes differ anywhere, and the largest difference in LSBs."""
    reference_codes = reference_codes.reshape(csim_codes.shape)
    diff = np.abs(csim_codes - reference_codes)
    return CsimComparison(
        jets=len(csim_codes),
        mismatched_jets=int(np.count_nonzero(diff.max(axis=1))) if diff.size else 0,
        max_abs_diff_lsb=int(diff.max()) if diff.size else 0,
        output_type=str(output_type),
        csim_codes=csim_codes,
        reference_codes=reference_codes,
    )


def float32_reference_codes(model, network: QuantizedNetwork, x: np.ndarray) -> np.ndarray:
    """QKeras (float32) outputs as codes of the output type, rounded to the nearest code."""
    inputs = network.model_inputs(x)  # one array, or [constituents, mask] for a DeepSets with a kept mask
    inputs = [a.astype(np.float32) for a in inputs] if isinstance(inputs, list) else inputs.astype(np.float32)
    outputs = np.asarray(model.predict(inputs, batch_size=8192, verbose=0), np.float64)
    return network.output_type.nearest_codes(outputs.reshape(len(x), -1))


# ---------------------------------------------------------------- stress inputs


def tie_rows(base: np.ndarray, input_type: FixedType, rng: np.random.Generator) -> np.ndarray:
    """``base`` with every feature moved by +-half an input LSB: each value sits on a rounding tie."""
    return base + input_type.lsb / 2 * rng.choice([-1.0, 1.0], size=base.shape)


def overrange_values(input_type: FixedType, n: int, rng: np.random.Generator, max_scale: float) -> np.ndarray:
    """``n`` values of random sign, 1 to ``max_scale`` times the input type's largest value."""
    return rng.choice([-1.0, 1.0], size=n) * input_type.max_value * rng.uniform(1.0, max_scale, n)


def stress_inputs(network: QuantizedNetwork, real_inputs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Inputs placed exactly on rounding ties of the input type and beyond its range.

    Half the rows sit half an LSB off real jets' values (ties, rounded half to even), the
    other half are scaled far beyond the type's range (saturation).
    """
    rng = np.random.default_rng(seed)
    base = real_inputs[rng.integers(0, len(real_inputs), size=n)]
    ties = tie_rows(base, network.input_type, rng)
    over = base.copy()
    columns = rng.integers(0, base.shape[1], size=n)
    over[np.arange(n), columns] = overrange_values(network.input_type, n, rng, 4.0)
    return np.concatenate([ties[: n // 2], over[n // 2 :]])


def hgq_stress_rows(network: HGQNetwork, x: np.ndarray, input_type: FixedType, n: int = 400,
                    seed: int = 1) -> np.ndarray:
    """Rows on rounding ties of the run's input grid and of each input's learned grid, and beyond the range.

    A quarter each: half an input LSB off real rows; half a learned LSB off (HGQ2 may keep fewer fractional
    bits than the input grid); one input 1-4x beyond the input type's largest value; every input at ±2^20.
    """
    rng = np.random.default_rng(seed)
    base = np.asarray(x, np.float64)[rng.integers(0, len(x), size=n)]
    quarter = n // 4
    learned = base + rng.choice([-1.0, 1.0], size=base.shape) * np.exp2(-network.stages[0].inputs.frac - 1.0)
    over = base.copy()
    over[np.arange(n), rng.integers(0, base.shape[1], size=n)] = overrange_values(input_type, n, rng, 4.0)
    far = rng.choice([-1.0, 1.0], size=base.shape) * 2.0**20
    return np.concatenate([tie_rows(base, input_type, rng)[:quarter], learned[:quarter], over[:quarter],
                           far[: n - 3 * quarter]])


def stress_rows_for(network, x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The stress rows of a network's C-simulation and RTL checks: constituent jets (padding, ties, saturation),
    per-element learned grids for an HGQ2 network, else the input type's ties and over-range rows."""
    if x.ndim == 3:
        return set_stress_inputs(network.input_type, x, n, seed)
    if isinstance(network, HGQNetwork):
        return hgq_stress_rows(network, x, network.input_type, n, seed)
    return stress_inputs(network, x, n=n, seed=seed)


# ---------------------------------------------------------------- the run's C-simulation stage


@dataclass
class CsimResult:
    """The C-simulation stage of a run: every test jet, the stress set and QKeras float32.

    :meth:`to_json` is the run's ``metrics.json["csim"]`` (without ``enabled``, which the
    pipeline owns); ``scores`` holds the score metrics the pipeline adds (AUC, working point).
    """

    comparison: CsimComparison
    stress: CsimComparison
    qkeras_float32: CsimComparison
    compile_seconds: float
    predict_seconds: float
    scores: dict = field(default_factory=dict)

    @property
    def csim_codes(self) -> np.ndarray:
        """Output codes of the C-simulation on the test jets."""
        return self.comparison.csim_codes

    @property
    def exact(self) -> bool:
        """No test jet and no stress row differs in any output bit."""
        return self.comparison.mismatched_jets == 0 and self.stress.mismatched_jets == 0

    def to_json(self) -> dict:
        """The metrics.json ``csim`` dict (keys and values as written since v0.1)."""
        result = self.comparison.summary()
        result.update(
            compile_seconds=round(self.compile_seconds, 1),
            predict_seconds=round(self.predict_seconds, 1),
            stress={"jets": self.stress.jets, "mismatched_jets": self.stress.mismatched_jets,
                    "max_abs_diff_lsb": self.stress.max_abs_diff_lsb, "what": STRESS_WHAT},
            qkeras_float32={"mismatched_jets": self.qkeras_float32.mismatched_jets,
                            "max_abs_diff_lsb": self.qkeras_float32.max_abs_diff_lsb, "note": QKERAS_FLOAT32_NOTE},
        )
        result.update(self.scores)
        return result


def run_csim(project, network: QuantizedNetwork, qat_model, x_test: np.ndarray, exact_codes: np.ndarray,
             seed: int) -> CsimResult:
    """C-simulate every test jet and ``min(20000, 4 x jets)`` stress rows; compare with the exact codes.

    ``project`` is a compiled :class:`~qtrigger.firmware.convert.HLSProject`; ``seed`` draws
    the stress rows. Off-grid C-simulation outputs raise (the types are exact by construction).
    """
    start = time.perf_counter()
    comparison = compare_codes(csim_predict_codes(project, network, x_test), exact_codes, network.output_type)
    stress = stress_rows_for(network, x_test, min(20000, 4 * len(x_test)), seed)
    stress_cmp = compare_codes(csim_predict_codes(project, network, stress), network.forward_codes(stress),
                               network.output_type)
    f32 = compare_codes(float32_reference_codes(qat_model, network, x_test), exact_codes, network.output_type)
    return CsimResult(comparison, stress_cmp, f32, project.compile_seconds, time.perf_counter() - start)


def csim_in_temporary_project(model, network: QuantizedNetwork, hls, name: str, x: np.ndarray,
                              exact_codes: np.ndarray) -> dict:
    """Convert ``model`` into a throw-away HLS project, C-simulate ``x`` and compare with ``exact_codes`` (summary)."""
    with tempfile.TemporaryDirectory(prefix="qtrigger-eval-") as tmp:
        project = convert(model, network, hls, Path(tmp), name)
        comparison = compare_codes(csim_predict_codes(project, network, x), exact_codes, network.output_type)
    return comparison.summary()
