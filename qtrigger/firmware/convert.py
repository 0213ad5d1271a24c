"""hls4ml conversion: the layer configuration and the written, compiled project.

Precisions come from :class:`~qtrigger.emulate.network.QuantizedNetwork` (derived from the QKeras
quantizers and the trained weights), never typed by hand. The input type rounds half to
even and saturates (``RND_CONV, SAT``) exactly as the QKeras input quantizer does, so
float inputs are converted as QKeras converts them instead of being truncated first.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.config import HLSConfig
from qtrigger.emulate.hgq import HGQNetwork
from qtrigger.emulate.network import QuantizedNetwork
from qtrigger.firmware.adapter import config_from_keras_model, convert_from_keras_model
from qtrigger.fixedpoint import parse_fixed
from qtrigger.models.build import load_model

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


def cpp_layer_names(model) -> dict[str, str]:
    """``{old: new}`` for the layers whose names are no C++ identifiers (hls4ml names C++ variables after them).

    ``-``, ``/``, ``.`` or a leading digit do not compile: each such name becomes ``\\W`` → ``_``
    (``L_`` in front of a digit or a C++ keyword; a number appended when the name is taken).
    """
    taken = {layer.name for layer in model.layers}
    renamed = {}
    for layer in model.layers:
        if re.fullmatch(r"[A-Za-z_]\w*", layer.name) and layer.name not in _CPP_RESERVED:
            continue
        base = re.sub(r"\W", "_", layer.name)
        base = base if re.match(r"[A-Za-z_]", base) and base not in _CPP_RESERVED else f"L_{base}"
        new, n = base, 1
        while new in taken:
            new, n = f"{base}_{n}", n + 1
        taken.add(new)
        renamed[layer.name] = new
    return renamed


def with_cpp_layer_names(model) -> tuple[object, dict[str, str]]:
    """``model`` rebuilt with C++-identifier layer names (same weights), and ``{old: new}``; as is when none change.

    Rebuilt through the HDF5 form QKeras models load from (a renamed model config and weight
    groups): the quantizers are deserialized exactly as when the user's file was read.
    """
    renamed = cpp_layer_names(model)
    if not renamed:
        return model, {}
    import tempfile
    import warnings

    import h5py


    with tempfile.TemporaryDirectory(prefix="qtrigger-names-") as tmp:
        path = Path(tmp) / "renamed.h5"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "HDF5 is legacy": the format QKeras reads
            model.save(path, save_format="h5", include_optimizer=False)
        with h5py.File(path, "r+") as handle:
            handle.attrs["model_config"] = json.dumps(_renamed_config(json.loads(handle.attrs["model_config"]), renamed))
            weights = handle["model_weights"]
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in weights.attrs["layer_names"]]
            for old, new in renamed.items():
                if old in weights:
                    weights.move(old, new)
            weights.attrs["layer_names"] = [renamed.get(n, n).encode() for n in names]
        return load_model(path), renamed


def _renamed_config(node, renamed: dict[str, str], key: str | None = None):
    """A Keras model config with layer names replaced: ``name`` values and names in node lists."""
    if isinstance(node, dict):
        return {k: _renamed_config(v, renamed, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed_config(v, renamed, "[]") for v in node]
    return renamed.get(node, node) if key in ("name", "[]") and isinstance(node, str) else node


def hls_layer_config(model, network: QuantizedNetwork, hls_cfg: HLSConfig, precision_overrides: dict | None = None) -> dict:
    """The hls4ml config dict with every precision set from the integer network.

    ``precision_overrides`` (``{layer: {field: "ap_fixed<W,I>"}}``) replaces derived types;
    it exists for diagnosis (what would a hand-typed accumulator do), not for normal runs.
    """

    config = config_from_keras_model(
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
    for layer_name, fields in network.extra_layer_precisions().items():
        layers.setdefault(layer_name, {}).setdefault("Precision", {}).update({k: t.hls() for k, t in fields.items()})
    for layer_name, fields in (precision_overrides or {}).items():
        for key, text in fields.items():
            layers[layer_name]["Precision"][key] = parse_fixed(text).hls()
            if key == "result" and f"{layer_name}_linear" in layers:
                layers[f"{layer_name}_linear"]["Precision"]["result"] = parse_fixed(text).hls()
    return config


def keras3_config(hls_cfg: HLSConfig) -> dict:
    """The hls4ml config of an HGQ2 model: model-level only (hls4ml derives every precision from its quantizers)."""
    return {"Model": {"Precision": hls_cfg.default_precision, "ReuseFactor": hls_cfg.reuse_factor,
                      "Strategy": "Latency"}}


def convert_keras3_model(model, config: dict, common: dict):
    """hls4ml's Keras-3 front end on an HGQ2 model (``common``: output folder, project, backend, part, testbench)."""
    import hls4ml

    return hls4ml.converters.convert_from_keras_model(model, hls_config=config, **common)


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
    """Convert with hls4ml, write the project (with testbench files from real jets) and compile it.

    A QKeras model goes through hls4ml's Keras-2 front end with every precision from ``network``; an HGQ2 model
    (``network`` an :class:`~qtrigger.emulate.hgq.HGQNetwork`) through its Keras-3 front end, which reads the
    trained quantizers itself (the reference only judges the result).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tb_in = tb_out = None
    if testbench_inputs is not None:
        tb_in, tb_out = directory / "tb_input_features.npy", directory / "tb_output_predictions.npy"
        np.save(tb_in, testbench_inputs.astype(np.float64))
        np.save(tb_out, network.forward(testbench_inputs))
    name = project_name_for(run_name)
    common = {"output_dir": str(directory), "project_name": name, "backend": hls_cfg.backend,
              "io_type": hls_cfg.io_type, "part": hls_cfg.part, "clock_period": hls_cfg.clock_period_ns,
              "input_data_tb": str(tb_in) if tb_in else None, "output_data_tb": str(tb_out) if tb_out else None}
    if isinstance(network, HGQNetwork):
        config = keras3_config(hls_cfg)
        hls_model = convert_keras3_model(model, config, common)
    else:
        config = hls_layer_config(model, network, hls_cfg, precision_overrides)
        hls_model = convert_from_keras_model(model, hls_config=config, **common)
    start = time.perf_counter()
    if compile_model:
        hls_model.compile()
    else:
        hls_model.write()
    return HLSProject(hls_model, directory, name, config, time.perf_counter() - start)
