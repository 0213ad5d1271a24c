"""hls4ml conversion and C-simulation of an HGQ2 model (Keras 3), checked against its exact integer reference.

hls4ml 1.3 reads HGQ2's trained quantizers itself (its Keras-3 front end, bit-exact type inference), so no
precision is typed here: the reference (:mod:`qtrigger.emulate.hgq`) only judges the result. Unlike the QKeras
path (:mod:`qtrigger.firmware.adapter`), the Keras-3 front end is the right one for these models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.config import HLSConfig
from qtrigger.emulate.hgq import HGQNetwork
from qtrigger.firmware.csim import overrange_values, tie_rows
from qtrigger.fixedpoint import FixedType


@dataclass
class HGQCsim:
    """C-simulation against the reference: mismatching rows of the given and of the stress rows."""

    rows: int
    mismatches: int
    stress_rows: int
    stress_mismatches: int
    compile_seconds: float

    @property
    def exact(self) -> bool:
        """Whether every row matched."""
        return self.mismatches == 0 and self.stress_mismatches == 0


def convert_hgq(model, hls_cfg: HLSConfig, directory: Path, project_name: str = "qtrigger_hgq"):
    """Write and compile the hls4ml project of a trained HGQ2 model (Latency strategy, io_parallel)."""
    import hls4ml

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"Model": {"Precision": hls_cfg.default_precision, "ReuseFactor": hls_cfg.reuse_factor,
                        "Strategy": "Latency"}}
    return hls4ml.converters.convert_from_keras_model(
        model, output_dir=str(directory), project_name=project_name, backend=hls_cfg.backend,
        io_type=hls_cfg.io_type, part=hls_cfg.part, clock_period=hls_cfg.clock_period_ns, hls_config=config)


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


def csim_hgq(hls_model, network: HGQNetwork, x: np.ndarray, input_type: FixedType) -> HGQCsim:
    """Compile, then compare C-simulation outputs with the exact reference on ``x`` and on
    :func:`hgq_stress_rows`."""
    start = time.perf_counter()
    hls_model.compile()
    seconds = time.perf_counter() - start
    stress = hgq_stress_rows(network, x, input_type)
    counts = [_mismatches(hls_model, network, rows) for rows in (x, stress)]
    return HGQCsim(len(x), counts[0], len(stress), counts[1], seconds)


def _mismatches(hls_model, network: HGQNetwork, rows: np.ndarray) -> int:
    """Rows whose C-simulated outputs differ from the reference's in any output."""
    rows = np.ascontiguousarray(rows, np.float64)
    out = np.asarray(hls_model.predict(rows), np.float64).reshape(len(rows), -1)
    return int(np.any(out != network.forward(rows), axis=1).sum())
