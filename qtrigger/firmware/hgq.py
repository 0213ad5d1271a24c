"""hls4ml conversion and C-simulation of an HGQ2 model (Keras 3), checked against its exact integer reference.

hls4ml 1.3 reads HGQ2's trained quantizers itself (its Keras-3 front end, bit-exact type inference), so no
precision is typed here: the reference (:mod:`qtrigger.emulate.hgq`) only judges the result. Unlike the QKeras
path (:mod:`qtrigger.firmware.adapter`), the Keras-3 front end is the right one for these models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtrigger.config import HLSConfig
from qtrigger.emulate.hgq import HGQNetwork, extract_hgq_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware.check import CheckResult
from qtrigger.firmware.csim import overrange_values, tie_rows
from qtrigger.firmware.rtl import (
    HWCONFIG,
    RAW_EXTRA_BITS,
    SOLVER_OPTIONS,
    _environment,
    _kif,
    _require_da4ml,
    verilator_environment,
)
from qtrigger.firmware.rtl_check import _snap
from qtrigger.firmware.synth import synthesize as yosys
from qtrigger.fixedpoint import FixedType


def convert_hgq(model, hls_cfg: HLSConfig, directory: Path, project_name: str = "qtrigger_hgq"):
    """Write and compile the hls4ml project of a trained HGQ2 model (Latency strategy, io_parallel)."""
    import hls4ml

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"Model": {"Precision": hls_cfg.default_precision, "ReuseFactor": hls_cfg.reuse_factor,
                        "Strategy": "Latency"}}
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, output_dir=str(directory), project_name=project_name, backend=hls_cfg.backend,
        io_type=hls_cfg.io_type, part=hls_cfg.part, clock_period=hls_cfg.clock_period_ns, hls_config=config)
    hls_model.compile()
    return hls_model


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


def _difference_lsb(hls_model, network: HGQNetwork, rows: np.ndarray) -> np.ndarray:
    """C-simulation minus reference, per row and output, in LSBs of the reference's output grid."""
    rows = np.ascontiguousarray(rows, np.float64)
    out = np.asarray(hls_model.predict(rows), np.float64).reshape(len(rows), -1)
    codes, frac = network.forward_codes(rows)
    return np.round((out - codes * 2.0**-frac) * 2.0**frac).astype(np.int64)


def model_input_type(network: HGQNetwork) -> FixedType:
    """The widest input type of the first layer's learned input quantizers (for a user's model's stress rows)."""
    q = network.stages[0].inputs
    largest = int(np.abs(np.concatenate([q._on_grid(q.lo), q._on_grid(q.hi)])).max(initial=1))
    width = max(int(largest).bit_length() + 1, 2)  # sign + magnitude on the finest grid
    return FixedType(width, width - q.grid, True)


def check_hgq_model(model, x: np.ndarray, hls_cfg: HLSConfig, directory: Path, name: str = "check",
                    source: str = "") -> CheckResult:
    """``hls check`` of a saved HGQ2 model: hls4ml C-simulation vs the exact reference on ``x`` and stress rows."""
    network = extract_hgq_network(model)
    n_in = network.stages[0].kernel.shape[0]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise QTriggerError(f"{source or 'inputs'}: rows of shape {x.shape[1:]}, the HGQ2 model takes {n_in} features")
    input_type = model_input_type(network)
    hls_model = convert_hgq(model, hls_cfg, directory, f"{name}_hgq")
    stress = hgq_stress_rows(network, x, input_type)
    diff, stress_diff = (np.abs(_difference_lsb(hls_model, network, rows)) for rows in (x, stress))
    keras_out = np.asarray(model.predict(np.asarray(x, np.float32), verbose=0), np.float64).reshape(len(x), -1)
    _, frac = network.forward_codes(x[:1])
    return CheckResult(
        events=len(x), mismatched_events=int(np.any(diff, axis=1).sum()), max_abs_diff_lsb=int(diff.max(initial=0)),
        stress_events=len(stress), stress_mismatched_events=int(np.any(stress_diff, axis=1).sum()),
        stress_max_abs_diff_lsb=int(stress_diff.max(initial=0)), output_type=f"accumulator, {frac} fractional bits",
        reference="exact int64 reference of the HGQ2 quantizers (qtrigger.emulate.hgq)",
        qkeras_float32_mismatched_events=int(np.any(keras_out != network.forward(x), axis=1).sum()),
        input_type=str(input_type), input_type_source="HGQ2 model's learned input quantizers (widest)",
        notes=[f"HGQ2 model from {source}" if source else "HGQ2 model"])


def rtl_check_hgq(model, network: HGQNetwork, x: np.ndarray, input_type: FixedType, directory: Path,
                  clock_period_ns: float = 5.0, part: str | None = None, nproc: int = 2,
                  synthesize: bool = False) -> dict:
    """da4ml traces the HGQ2 model (its saturating input quantizer included), Verilator builds the Verilog;
    RTL, da4ml's interpreter and the exact reference are compared on ``x`` and :func:`hgq_stress_rows`.

    The RTL input word is the run's input type widened by ``RAW_EXTRA_BITS`` (as for QKeras networks), so rows
    off the input grid and beyond its range reach the circuit; rows are snapped to that word first.
    The Verilog is combinational (da4ml latency cutoff -1: II 1, unpipelined). ``synthesize``: yosys counts
    its cells (``yosys`` key: LUT, FF, carry cells of the flattened top).
    """
    from da4ml.codegen import VerilogModel
    from da4ml.converter import trace_model
    from da4ml.trace import HWConfig, comb_trace


    _require_da4ml()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    extra_int, extra_frac = RAW_EXTRA_BITS
    raw = FixedType(input_type.width + extra_int + extra_frac, input_type.integer + extra_int, input_type.signed)
    inputs, outputs = trace_model(model, HWConfig(*HWCONFIG), dict(SOLVER_OPTIONS), inputs_kif=_kif(raw))
    comb = comb_trace(inputs, outputs)
    verilog = VerilogModel(comb, "qtrigger_hgq", directory / "rtl", latency_cutoff=-1, clock_period=clock_period_ns,
                           part_name=part or HLSConfig().part)
    with _environment(verilator_environment(directory / "tools")):
        verilog.compile(openmp=False, nproc=max(1, int(nproc)))
    sets = {"real": _snap(np.asarray(x, np.float64), raw),
            "stress": _snap(hgq_stress_rows(network, x, input_type), raw)}
    results = {}
    for name, rows in sets.items():
        reference = network.forward(rows)
        rtl = np.asarray(verilog.predict(rows), np.float64).reshape(reference.shape)
        interpreter = np.asarray(comb.predict(rows, n_threads=1), np.float64).reshape(reference.shape)
        results[name] = {"rows": len(rows),
                         "rtl_vs_reference": int(np.any(rtl != reference, axis=1).sum()),
                         "interpreter_vs_reference": int(np.any(interpreter != reference, axis=1).sum())}
    exact = all(r["rtl_vs_reference"] == 0 and r["interpreter_vs_reference"] == 0 for r in results.values())
    result = {"exact": exact, "sets": results, "raw_input_type": str(raw), "da4ml_cost": float(comb.cost)}
    if synthesize:
        cells = yosys(directory / "rtl", "qtrigger_hgq", per_stage=False).total
        result["yosys"] = {"lut": cells.lut, "ff": cells.ff, "carry": cells.carry}
    return result
