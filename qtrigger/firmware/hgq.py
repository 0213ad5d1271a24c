"""hls4ml conversion and C-simulation of an HGQ2 model (Keras 3), checked against its exact integer reference.

hls4ml 1.3 reads HGQ2's trained quantizers itself (its Keras-3 front end, bit-exact type inference), so no
precision is typed here: the reference (:mod:`qtrigger.emulate.hgq`) only judges the result. Unlike the QKeras
path (:mod:`qtrigger.firmware.adapter`), the Keras-3 front end is the right one for these models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtrigger.config import HLSConfig
from qtrigger.emulate.hgq import HGQNetwork, extract_hgq_network, has_hgq_input_quantizer
from qtrigger.emulate.network import input_type_from_data
from qtrigger.errors import QTriggerError
from qtrigger.firmware.check import CheckResult
from qtrigger.firmware.convert import convert_keras3_model, keras3_config
from qtrigger.firmware.csim import hgq_stress_rows
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
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    common = {"output_dir": str(directory), "project_name": project_name, "backend": hls_cfg.backend,
              "io_type": hls_cfg.io_type, "part": hls_cfg.part, "clock_period": hls_cfg.clock_period_ns}
    hls_model = convert_keras3_model(model, keras3_config(hls_cfg), common)
    hls_model.compile()
    return hls_model


def _difference_lsb(hls_model, network: HGQNetwork, rows: np.ndarray) -> np.ndarray:
    """C-simulation minus reference, per row and output, in LSBs of the reference's output grid."""
    rows = np.ascontiguousarray(rows, np.float64)
    out = np.asarray(hls_model.predict(rows), np.float64).reshape(len(rows), -1)
    frac = network.output_type.frac
    return np.round((out - network.forward(rows)) * 2.0**frac).astype(np.int64)


def with_input_quantizer(model, input_type: FixedType, name: str = "input_grid"):
    """``model`` (an HGQ2 chain whose first layer does not quantize its inputs) behind a fixed, saturating HGQ2
    ``Quantizer`` layer on ``input_type`` (round half up): the firmware's input word. On inputs already on that
    grid and within its range the result equals ``model``'s. hls4ml converts no HGQ2 model without it."""
    import keras
    from hgq.config import QuantizerConfig
    from hgq.layers import Quantizer

    signed = int(input_type.signed)
    grid = Quantizer(QuantizerConfig("kif", "datalane", k0=signed, i0=input_type.integer - signed,
                                     f0=input_type.frac, round_mode="RND", overflow_mode="SAT", trainable=False),
                     name=name)
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    wrapped = keras.Sequential([keras.Input(tuple(model.inputs[0].shape[1:]), name=_input_layer_name(model)), grid,
                                *layers], name=f"{model.name}_on_input_grid")
    wrapped(np.zeros((1, *model.inputs[0].shape[1:]), np.float32))
    return wrapped


def _input_layer_name(model) -> str:
    names = [layer.name for layer in model.layers if type(layer).__name__ == "InputLayer"]
    return names[0] if names else "inputs"


def check_hgq_model(model, x: np.ndarray, hls_cfg: HLSConfig, directory: Path, name: str = "check",
                    source: str = "") -> CheckResult:
    """``hls check`` of a saved HGQ2 model: hls4ml C-simulation vs the exact reference on ``x`` and stress rows.

    A model whose first layer does not quantize its inputs is checked behind :func:`with_input_quantizer` on the
    smallest grid holding every row of ``x`` exactly (as a QKeras model without an input quantizer is); inputs
    off every grid of at most 24 fractional bits are refused in one line.
    """
    n_in = int(model.inputs[0].shape[-1])
    if x.ndim != 2 or x.shape[1] != n_in:
        raise QTriggerError(f"{source or 'inputs'}: rows of shape {x.shape[1:]}, the HGQ2 model takes {n_in} features")
    original, notes, source_of_type = model, [f"HGQ2 model from {source}" if source else "HGQ2 model"], \
        "HGQ2 model's learned input quantizers (widest)"
    if not has_hgq_input_quantizer(model):
        grid = input_type_from_data(x)
        model = with_input_quantizer(model, grid)
        source_of_type = "grid of the given inputs (the model has no input quantizer)"
        notes.append(f"no input quantizer: checked behind a saturating {grid} input quantizer (the inputs' grid)")
    network = extract_hgq_network(model)
    input_type = network.input_type
    hls_model = convert_hgq(model, hls_cfg, directory, f"{name}_hgq")
    stress = hgq_stress_rows(network, x, input_type)
    diff, stress_diff = (np.abs(_difference_lsb(hls_model, network, rows)) for rows in (x, stress))
    keras_out = np.asarray(original.predict(np.asarray(x, np.float32), verbose=0), np.float64).reshape(len(x), -1)
    frac = network.output_type.frac
    return CheckResult(
        events=len(x), mismatched_events=int(np.any(diff, axis=1).sum()), max_abs_diff_lsb=int(diff.max(initial=0)),
        stress_events=len(stress), stress_mismatched_events=int(np.any(stress_diff, axis=1).sum()),
        stress_max_abs_diff_lsb=int(stress_diff.max(initial=0)), output_type=f"accumulator, {frac} fractional bits",
        reference="exact int64 reference of the HGQ2 quantizers (qtrigger.emulate.hgq)",
        qkeras_float32_mismatched_events=int(np.any(keras_out != network.forward(x), axis=1).sum()),
        input_type=str(input_type), input_type_source=source_of_type, notes=notes)


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
