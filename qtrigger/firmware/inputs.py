"""User-given files of ``hls check``: a saved Keras model and a ``.npy`` of network inputs.

Each problem is one QTriggerError line naming the file and what was expected, raised
before any conversion; TensorFlow is imported only to load a file that passed the cheap
checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.models.build import load_model

_MODEL_HINT = "expected a Keras model saved as HDF5 (model.save('model.h5'))"


def load_inputs(path) -> np.ndarray:
    """A numeric ``.npy`` array (events x features, or jets x constituents x features), or ``{input name: array}``
    from an ``.npz``; not yet checked."""
    path = Path(path)
    if not path.is_file():
        raise QTriggerError(f"{path}: no such file; expected a .npy array of network inputs (events x features)")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        reason = "object arrays are refused" if "allow_pickle" in str(err) else type(err).__name__
        raise QTriggerError(f"{path}: not a readable .npy array of numbers ({reason})") from None
    if not isinstance(x, np.ndarray):  # .npz: one array per model input, by input name
        with x:
            return {name: x[name] for name in x.files}
    return x


def validate_array(x, shape: int | tuple[int, ...], source: str) -> np.ndarray:
    """``x`` as contiguous float64 (events, *``shape``), or a one-line QTriggerError naming ``source``.

    ``shape`` is the model's input shape without the batch axis: ``n_features`` (an int) for
    a flat input, ``(constituents, features)`` for a constituent network.
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    expected = (f"a 2-D array (events x {shape[0]} features)" if len(shape) == 1 else
                f"a {len(shape) + 1}-D array (jets x " + " x ".join(str(n) for n in shape) + ")")
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.issubdtype(x.dtype, np.complexfloating):
        raise QTriggerError(f"{source}: values of dtype {x.dtype}; expected real numbers (float or int)")
    if x.ndim != len(shape) + 1:
        raise QTriggerError(f"{source}: shape {x.shape}; expected {expected}")
    if x.shape[0] == 0:
        raise QTriggerError(f"{source}: shape {x.shape} has no rows; expected at least one event")
    if len(shape) == 1 and x.shape[1] != shape[0]:
        raise QTriggerError(f"{source}: {x.shape[1]} features per row; the model takes {shape[0]}")
    if tuple(x.shape[1:]) != shape:
        raise QTriggerError(f"{source}: shape {x.shape}; the model takes {expected}")
    x = np.ascontiguousarray(x, dtype=np.float64)
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise QTriggerError(f"{source}: {int(bad.sum())} of {len(x)} rows contain NaN or inf (first: row "
                            f"{int(np.flatnonzero(bad)[0])}); remove or fix them, firmware inputs are finite")
    return x


def load_keras_model(path):
    """A saved tf-keras/QKeras model from an HDF5 file (checked to be HDF5 before TensorFlow loads)."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise QTriggerError(f"{path}: no such model file; {_MODEL_HINT}")
    if path.is_dir() or not h5py.is_hdf5(path):
        raise QTriggerError(f"{path}: not an HDF5 file; {_MODEL_HINT}")
    with h5py.File(path, "r") as handle:
        if "model_config" not in handle.attrs:
            raise QTriggerError(f"{path}: HDF5 without a model_config (weights only?); {_MODEL_HINT}")

    try:
        return load_model(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # deserialising the user's file
        message = " ".join(str(err).split())[:200] or type(err).__name__
        raise QTriggerError(f"{path}: not a loadable Keras model ({type(err).__name__}: {message})") from None
