"""``qtrigger hls check``: prove (or diagnose) bit-exactness of a QKeras model in hls4ml.

:func:`check_model_files` validates a saved model and an inputs file first (one-line
QTriggerError, nothing converted); :func:`hls_check` converts the model, compiles the
C-simulation, runs every event plus a stress set (rounding ties and out-of-range inputs)
and compares output codes with the exact integer emulation. When anything differs,
hls4ml's trace locates the first layer whose outputs differ and classifies the
difference as overflow/saturation (the firmware value is the exact value wrapped or
clipped into a too-narrow type) or rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qtrigger.config import HLSConfig
from qtrigger.emulate.network import QuantizedNetwork, extract_network, has_input_quantizer, input_type_from_data
from qtrigger.emulate.sets import extract_set_network, is_set_model
from qtrigger.errors import QTriggerError
from qtrigger.firmware.adapter import keras2_frontend
from qtrigger.firmware.convert import convert, with_cpp_layer_names
from qtrigger.firmware.csim import REFERENCE, compare_codes, csim_predict_codes, float32_reference_codes, stress_inputs
from qtrigger.firmware.inputs import load_inputs, load_keras_model, validate_array
from qtrigger.firmware.set_spellings import canonical_set_model
from qtrigger.firmware.sets import set_stress_inputs
from qtrigger.fixedpoint import parse_fixed


@dataclass
class LayerDiagnosis:
    """The first layer whose C-simulation outputs differ from the exact model."""

    layer: str
    events: int
    events_traced: int
    kind: str  # "overflow/saturation" or "rounding"
    hls_type: str
    exact_min: float
    exact_max: float


@dataclass
class CheckResult:
    """Outcome of a bit-exactness check (JSON-ready via :meth:`as_dict`)."""

    events: int
    mismatched_events: int
    max_abs_diff_lsb: int
    stress_events: int
    stress_mismatched_events: int
    stress_max_abs_diff_lsb: int
    output_type: str
    reference: str = REFERENCE
    qkeras_float32_mismatched_events: int | None = None
    first_bad_layer: LayerDiagnosis | None = None
    precision_overrides: dict = field(default_factory=dict)
    input_type: str | None = None
    input_type_source: str = "model input quantizer"
    notes: list[str] = field(default_factory=list)
    layer_names: dict = field(default_factory=dict)  # {model's name: C++ name} for names that were no identifiers

    @property
    def exact(self) -> bool:
        """True when no event (real or stress) differs in any output bit."""
        return self.mismatched_events == 0 and self.stress_mismatched_events == 0

    def as_dict(self) -> dict:
        """Plain data."""
        out = asdict(self)
        out["exact"] = self.exact
        return out

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"events: {self.events}, differing in any output bit: {self.mismatched_events} "
            f"(max {self.max_abs_diff_lsb} LSB of {self.output_type}); reference: {self.reference}",
            f"stress set (rounding ties, out-of-range inputs): {self.stress_mismatched_events} of {self.stress_events} differ",
        ]
        if self.input_type_source != "model input quantizer":
            lines.append(f"input type {self.input_type}: from the {self.input_type_source}")
        lines.extend(f"note: {note}" for note in self.notes)
        if self.qkeras_float32_mismatched_events is not None:
            lines.append(f"QKeras float32 vs exact reference: {self.qkeras_float32_mismatched_events} events differ")
        if self.first_bad_layer:
            d = self.first_bad_layer
            lines.append(f"first differing layer: {d.layer} on {d.events} of {d.events_traced} traced events: {d.kind} "
                         f"(firmware type {d.hls_type}, exact values span [{d.exact_min:g}, {d.exact_max:g}])")
        lines.append("BIT-EXACT" if self.exact else "NOT BIT-EXACT")
        return "\n".join(lines)


def hls_check(model, x: np.ndarray, hls_cfg: HLSConfig, directory: Path, name: str = "check",
              precision_overrides: dict | None = None, n_stress: int = 4000, seed: int = 1,
              max_traced: int = 500, source: str = "inputs") -> CheckResult:
    """Convert ``model``, C-simulate ``x`` and the stress set, compare with the exact model.

    ``precision_overrides`` (``{layer: {"accum"|"result"|...: "ap_fixed<W,I>"}}``) replaces
    derived types, e.g. to see what a hand-typed accumulator would do. A model without an
    input quantizer takes the smallest type that holds ``x`` exactly (refused when ``x``
    is not on a fixed-point grid). Inputs and layers are checked before any conversion; ``x`` may be
    ``{input name: array}`` for a DeepSets with a mask input, and ``source`` names it in errors.
    """

    model, spelling = canonical_set_model(model)  # TimeDistributed / mask-multiply DeepSets → one chain
    x = validate_array(spelling.inputs(x, source), spelling.array_shape or model_input_shape(model), source)
    model, renamed = with_cpp_layer_names(model)
    overrides = {renamed.get(layer, layer): fields for layer, fields in (precision_overrides or {}).items()}
    result = _check_exact(model, x, hls_cfg, Path(directory), name, overrides, n_stress, seed, max_traced)
    result.notes[:0] = spelling.notes
    if renamed:
        result.notes.append("layer names made C++ identifiers: " + ", ".join(f"{a} -> {b}" for a, b in renamed.items()))
        result.layer_names = renamed
    return result


def _check_exact(model, x, hls_cfg, directory: Path, name, precision_overrides, n_stress, seed, max_traced) -> CheckResult:
    """:func:`hls_check` on a model whose layer names are C++ identifiers."""

    model, notes = logits_model(model)
    network, source = _exact_network(model, x)
    project = convert(model, network, hls_cfg, Path(directory), name, precision_overrides=precision_overrides or {})
    exact = network.forward_codes(x)
    real = compare_codes(csim_predict_codes(project, network, x, strict=False), exact, network.output_type)
    stress = (set_stress_inputs(network.input_type, x, n_stress, seed, mask_channel=network.mask is not None)
              if is_set_model(model) else stress_inputs(network, x, n=n_stress, seed=seed))
    stress_cmp = compare_codes(csim_predict_codes(project, network, stress, strict=False),
                               network.forward_codes(stress), network.output_type)
    f32 = compare_codes(float32_reference_codes(model, network, x), exact, network.output_type)
    result = CheckResult(
        events=real.jets, mismatched_events=real.mismatched_jets, max_abs_diff_lsb=real.max_abs_diff_lsb,
        stress_events=stress_cmp.jets, stress_mismatched_events=stress_cmp.mismatched_jets,
        stress_max_abs_diff_lsb=stress_cmp.max_abs_diff_lsb, output_type=str(network.output_type),
        qkeras_float32_mismatched_events=f32.mismatched_jets, precision_overrides=precision_overrides or {},
        input_type=str(network.input_type), input_type_source=source, notes=notes,
    )
    if not result.exact:
        differing = np.concatenate([x[real.differing_rows()], stress[stress_cmp.differing_rows()]])
        result.first_bad_layer = diagnose(project, network, differing[:max_traced])
    return result


def _exact_network(model, x: np.ndarray):
    """(the exact integer network of ``model``, where its input type comes from): the model's input quantizer,
    else the smallest grid holding every given input (a DeepSets' kept mask feature left out)."""
    extract = extract_set_network if is_set_model(model) else extract_network
    if has_input_quantizer(model):
        return extract(model), "model input quantizer"
    features = x[..., :-1] if is_set_model(model) and len(model.inputs) == 2 else x
    return extract(model, input_type_from_data(features)), "grid of the given inputs (the model has no input quantizer)"


def check_model_files(model_path, inputs_path, hls_cfg: HLSConfig, directory, name: str = "check",
                      precision_overrides: dict | None = None, **options) -> CheckResult:
    """``hls check --model M.h5 --inputs X.npy``: validate both files first, then :func:`hls_check`.

    ``X`` is a ``.npy`` array or an ``.npz`` with one array per model input (a DeepSets mask, see
    :mod:`qtrigger.firmware.set_spellings`). Every problem with the files (missing, not HDF5, not a
    Keras model, not numeric, no rows, NaN/inf, wrong width, unsupported layers) raises a one-line
    QTriggerError before TensorFlow converts anything. ``options`` go to :func:`hls_check`.
    """
    x = load_inputs(inputs_path)
    return hls_check(load_keras_model(model_path), x, hls_cfg, Path(directory), name, precision_overrides,
                     source=str(inputs_path), **options)


def logits_model(model) -> tuple[object, list[str]]:
    """``model`` without a final softmax/sigmoid layer (hls4ml computes those with lookup tables), and a note.

    The trigger cuts on logits, so the check compares the logits; any other model is returned as is.
    """
    last = model.layers[-1]
    kind = type(last).__name__
    function = getattr(getattr(last, "activation", None), "__name__", "")
    if kind != "Softmax" and not (kind == "Activation" and function in ("softmax", "sigmoid")):
        return model, []
    import tf_keras as keras

    what = f"{kind}({function})" if function else kind
    note = (f"final {what} layer {last.name} left out: compared are the logits before it (hls4ml computes "
            "softmax/sigmoid with lookup tables, which are not bit-exact)")
    return keras.Model(model.inputs, model.layers[-2].output, name=f"{model.name}_logits"), [note]


def model_input_width(model) -> int:
    """Features per row the model takes (one flat input)."""
    shape = model_input_shape(model)
    if len(shape) != 1:
        raise QTriggerError(f"model: input shape {shape}; expected one flat input (events, features)")
    return shape[0]


def model_input_shape(model) -> tuple[int, ...]:
    """The model's input shape without the batch axis: (features,) or (constituents, features)."""
    shapes = [tuple(t.shape) for t in model.inputs]
    if len(shapes) != 1 or len(shapes[0]) not in (2, 3) or None in shapes[0][1:]:
        raise QTriggerError(f"model: input shape(s) {shapes}; expected one input (events, features) or "
                            "(jets, constituents, features)")
    return tuple(int(n) for n in shapes[0][1:])


def diagnose(project, network: QuantizedNetwork, x: np.ndarray) -> LayerDiagnosis | None:
    """Trace ``x`` through the C-simulation and find the first layer that differs from the exact model."""

    for layer in project.model.get_layers():
        layer.set_attr("trace", True)
    with keras2_frontend():
        _, traces = project.model.trace(network.model_inputs(x))
    _, exact_trace = network.forward_codes(x, return_all=True)
    for layer_name, (codes, exact_type) in exact_trace.items():
        if layer_name not in traces:
            continue
        hls_layer = project.model.graph[layer_name]
        hls_type = _fixed_type_of(hls_layer)
        exact_values = codes.astype(np.float64) * exact_type.lsb
        observed = np.asarray(traces[layer_name], dtype=np.float64).reshape(exact_values.shape)
        differs = (observed != exact_values).reshape(len(x), -1).any(axis=1)
        if differs.any():
            return LayerDiagnosis(
                layer=layer_name, events=int(differs.sum()), events_traced=len(x),
                kind=_classify(exact_values[differs], observed[differs], hls_type),
                hls_type=str(hls_type) if hls_type else "unknown",
                exact_min=float(exact_values.min()), exact_max=float(exact_values.max()),
            )
    return None


def _fixed_type_of(hls_layer):
    """The result type of an hls4ml layer as a FixedType (None if not fixed point)."""

    precision = hls_layer.get_output_variable().type.precision
    try:
        return parse_fixed(str(precision).replace(",0>", ">"))
    except ValueError:
        return None


def _classify(exact: np.ndarray, observed: np.ndarray, hls_type) -> str:
    """Overflow/saturation if the exact value lies outside the firmware type's range, else rounding."""
    if hls_type is None:
        return "unknown"
    out_of_range = (exact > hls_type.max_value) | (exact < hls_type.min_value)
    wrong = exact != observed
    return "overflow/saturation" if out_of_range[wrong].mean() > 0.5 else "rounding"


def precision_profile(network: QuantizedNetwork, x: np.ndarray) -> list[dict]:
    """Per layer: observed value range on ``x`` against the assigned type's range.

    For an activation, values beyond its type are clipped by the QKeras quantizer too
    (part of the trained model, reported as ``clipped_by_design``); an accumulator that
    receives values beyond its type would saturate or wrap in firmware only (``overflow``).
    """
    _, trace = network.forward_codes(x, return_all=True)
    rows = []
    previous = None
    for name, (codes, fixed_type) in trace.items():
        values = codes.astype(np.float64) * fixed_type.lsb
        stage = next((s for s in network.stages if s.activation_name == name), None)
        clipped = 0.0
        if stage is not None and previous is not None:
            pre = previous
            # a ReLU's zeroing of negative values is not clipping; only the upper bound is
            low = (pre < fixed_type.min_value) if fixed_type.signed else np.zeros_like(pre, bool)
            clipped = float(np.mean((pre > fixed_type.max_value) | low))
        rows.append({
            "layer": name, "type": str(fixed_type), "type_min": fixed_type.min_value, "type_max": fixed_type.max_value,
            "observed_min": float(values.min()), "observed_max": float(values.max()),
            "clipped_by_design": clipped if stage is not None else 0.0,
            "overflow": float(np.mean((values > fixed_type.max_value) | (values < fixed_type.min_value))) if stage is None else 0.0,
        })
        previous = values
    return rows
