"""hls4ml conversion, C-simulation and the bit-exact comparison.

Precisions come from :class:`~qtrigger.emulate.QuantizedNetwork` (derived from the QKeras
quantizers and the trained weights), never typed by hand. The input type rounds half to
even and saturates (``RND_CONV, SAT``) exactly as the QKeras input quantizer does, so
float inputs are converted as QKeras converts them instead of being truncated first.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger import hls4ml_compat
from qtrigger.config import HLSConfig
from qtrigger.emulate import QuantizedNetwork


_CPP_RESERVED = set(
    "alignas alignof and asm auto bool break case catch char class const constexpr continue default delete do double "
    "else enum explicit export extern false float for friend goto if inline int long mutable namespace new noexcept "
    "not nullptr operator or private protected public register return short signed sizeof static struct switch "
    "template this throw true try typedef typeid typename union unsigned using virtual void volatile while xor "
    "main nnet hls std".split()
)


def project_name_for(run_name: str) -> str:
    """A C identifier for the HLS top function, derived from the run name (never a C++ keyword)."""
    name = re.sub(r"\W", "_", run_name)
    if not re.match(r"[A-Za-z_]", name) or name in _CPP_RESERVED:
        name = f"qt_{name}"
    return name


def hls_layer_config(model, network: QuantizedNetwork, hls_cfg: HLSConfig, precision_overrides: dict | None = None) -> dict:
    """The hls4ml config dict with every precision set from the integer network.

    ``precision_overrides`` (``{layer: {field: "ap_fixed<W,I>"}}``) replaces derived types;
    it exists for diagnosis (what would a hand-typed accumulator do), not for normal runs.
    """
    from qtrigger.fixedpoint import parse_fixed

    config = hls4ml_compat.config_from_keras_model(
        model, granularity="name", backend=hls_cfg.backend, default_precision=parse_fixed(hls_cfg.default_precision).hls()
    )
    config["Model"]["Strategy"] = "Latency"
    config["Model"]["ReuseFactor"] = hls_cfg.reuse_factor
    layers = config["LayerName"]
    layers.setdefault(network.input_name, {}).setdefault("Precision", {})["result"] = network.input_type.hls()
    if network.input_quantizer_name:
        layers[network.input_quantizer_name]["Precision"]["result"] = network.input_type.hls()
    for stage in network.stages:
        precision = layers[stage.name]["Precision"]
        precision.update(
            weight=stage.weight_type.hls(),
            bias=stage.bias_type.hls(),
            accum=stage.accum_type.hls(),
            result=stage.accum_type.hls(),
        )
        if hls_cfg.strategy == "distributed_arithmetic":
            # per Dense layer: model-level DA makes hls4ml 1.3 raise on the input layer
            layers[stage.name]["Strategy"] = "distributed_arithmetic"
        linear = layers.get(f"{stage.name}_linear")
        if linear is not None:
            linear["Precision"]["result"] = stage.accum_type.hls()
        if stage.activation_name:
            layers[stage.activation_name]["Precision"]["result"] = stage.activation_type.hls()
    for layer_name, fields in (precision_overrides or {}).items():
        for key, text in fields.items():
            layers[layer_name]["Precision"][key] = parse_fixed(text).hls()
            if key == "result" and f"{layer_name}_linear" in layers:
                layers[f"{layer_name}_linear"]["Precision"]["result"] = parse_fixed(text).hls()
    return config


@dataclass
class HLSProject:
    """A converted, compiled hls4ml model and where it lives."""

    model: object  # hls4ml ModelGraph
    directory: Path
    project_name: str
    config: dict
    compile_seconds: float


def convert(model, network: QuantizedNetwork, hls_cfg: HLSConfig, directory: Path, run_name: str,
            testbench_inputs: np.ndarray | None = None, compile_model: bool = True,
            precision_overrides: dict | None = None) -> HLSProject:
    """Convert with hls4ml, write the project (with testbench files from real jets) and compile it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tb_in = tb_out = None
    if testbench_inputs is not None:
        tb_in, tb_out = directory / "tb_input_features.npy", directory / "tb_output_predictions.npy"
        np.save(tb_in, testbench_inputs.astype(np.float64))
        np.save(tb_out, network.forward(testbench_inputs))
    config = hls_layer_config(model, network, hls_cfg, precision_overrides)
    name = project_name_for(run_name)
    hls_model = hls4ml_compat.convert_from_keras_model(
        model,
        hls_config=config,
        output_dir=str(directory),
        project_name=name,
        backend=hls_cfg.backend,
        io_type=hls_cfg.io_type,
        part=hls_cfg.part,
        clock_period=hls_cfg.clock_period_ns,
        input_data_tb=str(tb_in) if tb_in else None,
        output_data_tb=str(tb_out) if tb_out else None,
    )
    start = time.perf_counter()
    if compile_model:
        hls_model.compile()
    else:
        hls_model.write()
    return HLSProject(hls_model, directory, name, config, time.perf_counter() - start)


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
            "reference": "integer emulation (exact, int64)",
        }


def csim_predict_codes(project: HLSProject, network: QuantizedNetwork, x: np.ndarray, strict: bool = True) -> np.ndarray:
    """Run every row through the compiled C-simulation; return output codes (int64).

    With ``strict``, an output off the grid of the exact output type raises; otherwise it
    is rounded to the nearest code (used when diagnosing deliberately altered types).
    """
    outputs = np.asarray(project.model.predict(np.ascontiguousarray(x, dtype=np.float64)), dtype=np.float64)
    outputs = outputs.reshape(len(x), -1)
    scaled = outputs * 2.0**network.output_type.frac
    codes = np.rint(scaled)
    off_grid = int(np.count_nonzero(codes != scaled))
    if off_grid and strict:
        raise RuntimeError(f"C-simulation returned {off_grid} values off the grid of {network.output_type}")
    return codes.astype(np.int64)


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
    outputs = np.asarray(model.predict(x.astype(np.float32), batch_size=8192, verbose=0), np.float64)
    return np.rint(outputs.reshape(len(x), -1) * 2.0**network.output_type.frac).astype(np.int64)


def stress_inputs(network: QuantizedNetwork, real_inputs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Inputs placed exactly on rounding ties of the input type and beyond its range.

    Half the rows sit half an LSB off real jets' values (ties, rounded half to even), the
    other half are scaled far beyond the type's range (saturation).
    """
    rng = np.random.default_rng(seed)
    base = real_inputs[rng.integers(0, len(real_inputs), size=n)]
    lsb = network.input_type.lsb
    ties = base + lsb / 2 * rng.choice([-1.0, 1.0], size=base.shape)
    over = base.copy()
    columns = rng.integers(0, base.shape[1], size=n)
    over[np.arange(n), columns] = rng.choice([-1.0, 1.0], size=n) * network.input_type.max_value * rng.uniform(1.0, 4.0, n)
    return np.concatenate([ties[: n // 2], over[n // 2 :]])
