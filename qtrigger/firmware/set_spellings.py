"""DeepSets models as users save them, rewritten into the one chain qtrigger proves exact.

The canonical chain (:func:`qtrigger.emulate.sets.extract_set_network`) is one
``(constituents, features)`` input → [input quantizer] → per-constituent QDense / QActivation
layers (biases allowed: a padded slot gives φ(0), as in Keras) → global pooling → QDense head.
Two other common spellings are accepted and rewritten before anything is converted:

* ``TimeDistributed(QDense)`` / ``TimeDistributed(QActivation)``: the wrapped layer applied to
  every constituent, which is what a QDense on a 3-D input does: unwrapped, same weights.
* a second input, a 0/1 **mask** of shape ``(constituents,)`` or ``(constituents, 1)``,
  multiplied (``Multiply``) into the per-constituent values before the pooling:

  - when every layer before the product maps 0 to 0 (bias-free QDense, ReLU, quantized_bits),
    ``phi(x) * m == phi(x * m)`` for ``m`` in {0, 1}: the model becomes the chain on the one
    input ``x * m``, and the given inputs are combined the same way (:meth:`SetSpelling.inputs`);
  - when a layer before it has a bias (φ(0) != 0), the product is **kept**: a second input of
    shape ``(constituents, width)`` (the mask repeated per value, as hls4ml's Multiply does not
    broadcast) multiplied where the model multiplies it. The given mask travels as one more
    feature after the constituents' features (:class:`qtrigger.emulate.sets.MaskProduct`).

Anything else that is not a chain (other merges, branches) is refused in one line naming the layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.firmware.inputs import validate_array
from qtrigger.models.build import custom_objects

WRAPPER = "TimeDistributed"
MASK_MERGE = "Multiply"
MASK_PATH_LAYERS = ("InputLayer", "Reshape")


@dataclass
class SetSpelling:
    """How a user's model was rewritten: its input names and notes for the check's report."""

    input_name: str | None = None  # the constituent input (None: the model is used as saved)
    mask_name: str | None = None  # the mask input: multiplied into x before the chain, or kept
    notes: list[str] = field(default_factory=list)
    x_shape: tuple | None = None  # (constituents, features) of the constituent input
    mask_kept: bool = False  # the product stays in the model (a φ bias before it)

    @property
    def array_shape(self) -> tuple | None:
        """Shape (without jets) of the array :meth:`inputs` returns: one more feature for a kept mask."""
        if self.x_shape is None:
            return None
        return self.x_shape[:-1] + (self.x_shape[-1] + int(self.mask_kept),)

    def inputs(self, arrays, source: str) -> np.ndarray:
        """One input array for the rewritten model from the user's array (or ``{input name: array}``)."""
        if not isinstance(arrays, dict):
            if self.mask_name is not None:
                raise QTriggerError(f"{source}: one array, but the model takes two inputs ({self.input_name}, "
                                    f"{self.mask_name}); give an .npz with one array per input name")
            return arrays
        if self.input_name is None:
            if len(arrays) != 1:
                raise QTriggerError(f"{source}: {len(arrays)} arrays ({', '.join(arrays)}); the model takes one input")
            return next(iter(arrays.values()))
        missing = [n for n in (self.input_name, self.mask_name) if n is not None and n not in arrays]
        if missing:
            raise QTriggerError(f"{source}: no array named {', '.join(missing)}; it holds {', '.join(arrays)} "
                                "(one array per model input, by input name)")
        x = validate_array(arrays[self.input_name], self.x_shape, f"{source}[{self.input_name}]")
        if self.mask_name is None:
            return x
        mask = _mask_values(np.asarray(arrays[self.mask_name]), x.shape, source)
        return np.concatenate([x, mask], axis=2) if self.mask_kept else x * mask


def _mask_values(mask: np.ndarray, x_shape: tuple, source: str) -> np.ndarray:
    mask = mask.reshape(mask.shape[:2]) if mask.ndim == 3 and mask.shape[2] == 1 else mask
    if mask.shape != tuple(x_shape[:2]):
        raise QTriggerError(f"{source}: mask of shape {mask.shape}; expected (jets, constituents) = {tuple(x_shape[:2])}")
    if not np.isin(mask, (0, 1)).all():
        raise QTriggerError(f"{source}: the mask holds values other than 0 and 1")
    return mask[..., None].astype(np.float64)


def canonical_set_model(model):
    """(model in the canonical chain, :class:`SetSpelling`); models without the two spellings come back unchanged."""
    kinds = {type(layer).__name__ for layer in model.layers}
    if WRAPPER not in kinds and len(model.inputs) == 1:
        return model, SetSpelling()
    config = model.get_config()
    if "input_layers" not in config:  # Sequential: one input, a chain by construction
        chain = [l for l in model.layers if type(l).__name__ != "InputLayer"]
        x_name, mask_name, products = "inputs", None, []
        x_shape = tuple(model.inputs[0].shape[1:])
    else:
        chain, x_name, mask_name, products = _walk_chain(model, config)
        x_shape = tuple(next(l for l in model.layers if l.name == x_name).output.shape[1:])
    kept = _kept_product(chain, products, mask_name)
    rebuilt = _rebuild(model, chain, x_name, x_shape, kept)
    notes = []
    if WRAPPER in kinds:
        notes.append("TimeDistributed layers unwrapped (a QDense on (constituents, features) is the same layer)")
    if kept is not None:
        notes.append(f"mask input {mask_name} kept: multiplied into the output of {chain[kept[0] - 1].name} as in the "
                     f"model (a phi bias before it: padded slots are phi(0) until masked); in firmware the mask "
                     f"repeated {kept[2]} times per constituent")
    elif mask_name is not None:
        notes.append(f"mask input {mask_name} applied at the input: every layer before the product maps 0 to 0, "
                     "so phi(x) * mask == phi(x * mask)")
    return rebuilt, SetSpelling(x_name, mask_name, notes, tuple(int(n) for n in x_shape), kept is not None)


def _kept_product(chain: list, products: list, mask_name: str | None):
    """(chain index, Multiply layer, width, mask name) of a mask product that must stay in the model, or None.

    It stays when a layer before the (last) product maps 0 to a nonzero value: then phi(x) * m != phi(x * m).
    """
    if not products or not any(_maps_zero_to_nonzero(l) for l in chain[:products[-1][0]]):
        return None
    at, layer = products[-1]
    if len(products) > 1:
        raise QTriggerError(f"layer {layer.name}: the mask is multiplied in {len(products)} times after layers with a "
                            "bias; multiply it in once")
    return at, layer, int(layer.output.shape[-1]), mask_name


def _walk_chain(model, config) -> tuple[list, str, str | None, list]:
    """The layers from the constituent input to the output in order (mask products left out), the two input
    names, and the products as (index in the chain, layer)."""
    inbound = {entry["name"]: [node[0] for node in (entry["inbound_nodes"][0] if entry["inbound_nodes"] else [])]
               for entry in config["layers"]}
    by_name = {layer.name: layer for layer in model.layers}
    inputs = [entry[0] for entry in config["input_layers"]]
    mask_name = _mask_input(inputs, inbound, by_name)
    x_name = next(n for n in inputs if n != mask_name)
    mask_path = _downstream_of(mask_name, inbound, by_name) if mask_name else set()
    chain, products, previous = [], [], x_name
    for layer in model.layers:
        name, kind = layer.name, type(layer).__name__
        if name in inputs or name in mask_path:
            continue
        sources = [s for s in inbound[name] if s not in mask_path]
        if sources != [previous] or (kind == MASK_MERGE) != (len(inbound[name]) == 2):
            raise QTriggerError(f"layer {name}: {kind} takes {inbound[name]}; a DeepSets model is one chain "
                                "(TimeDistributed and one mask Multiply are the accepted extras)")
        if kind == MASK_MERGE:
            products.append((len(chain), layer))
        else:
            chain.append(layer)
        previous = name
    return chain, x_name, mask_name, products


def _mask_input(inputs: list[str], inbound: dict, by_name: dict) -> str | None:
    if len(inputs) == 1:
        return None
    if len(inputs) != 2:
        raise QTriggerError(f"model: {len(inputs)} inputs {inputs}; a DeepSets model takes constituents and at most a mask")
    for name in inputs:
        shape = tuple(by_name[name].output.shape[1:])
        if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
            return name
    raise QTriggerError(f"model: inputs {inputs}; expected a (constituents, features) input and a (constituents,) or "
                        "(constituents, 1) mask")


def _downstream_of(mask_name: str, inbound: dict, by_name: dict) -> set[str]:
    """The mask input and the reshapes on its way to the Multiply."""
    path, grew = {mask_name}, True
    while grew:
        grew = False
        for name, sources in inbound.items():
            kind = type(by_name[name]).__name__
            if name not in path and kind in MASK_PATH_LAYERS and sources and set(sources) <= path:
                path.add(name)
                grew = True
    return path


def _maps_zero_to_nonzero(layer) -> bool:
    inner = getattr(layer, "layer", layer)
    return bool(getattr(inner, "use_bias", False)) and any(np.any(w) for w in inner.get_weights()[1:])


def _rebuild(model, chain: list, x_name: str, x_shape: tuple, kept=None):
    """A functional model: Input(``x_shape``) → each chain layer (TimeDistributed unwrapped), weights copied;
    with a ``kept`` product also a mask Input(constituents, width) multiplied in at its place."""
    import tf_keras as keras


    inputs = [keras.Input(x_shape, name=x_name)]
    tensor = inputs[0]
    for i, layer in enumerate(chain):
        if kept is not None and i == kept[0]:
            inputs.append(keras.Input((x_shape[0], kept[2]), name=kept[3]))
            tensor = keras.layers.Multiply(name=kept[1].name)([tensor, inputs[1]])
        inner = layer.layer if type(layer).__name__ == WRAPPER else layer
        config = {**inner.get_config(), "name": layer.name}  # the user's name, also for a wrapped layer
        clone = keras.layers.deserialize({"class_name": type(inner).__name__, "config": config},
                                         custom_objects=custom_objects())
        tensor = clone(tensor)
        clone.set_weights(inner.get_weights())
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], tensor, name=model.name)
