"""Issue 30, parts 3-4: ``hls check`` of saved HGQ2 models in a user's spellings, and HGQ2's wrap mode inside the
network, kept only where the integer reference proves no wrap reachable over the saturated input range.

The models are built, not trained: an exactness check needs random weights only. ``tests/test_hgq.py`` covers
the Sequential and functional spellings with each QDense's own input quantizer.
"""

from __future__ import annotations

import numpy as np
import pytest

from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType

INPUT_TYPE = FixedType(10, 4)


def _hgq_installed() -> bool:
    from qtrigger.models.hgq import hgq2_dir

    return (hgq2_dir() / "hgq" / "__init__.py").is_file()


pytestmark = pytest.mark.skipif("not _hgq_installed()", reason="hgq2 not installed: `make install` puts it in "
                                                             "<venv>/hgq2")


def _rows(n: int = 300, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return INPUT_TYPE.quantize_codes(rng.normal(scale=3.0, size=(n, 5))) * INPUT_TYPE.lsb


def _randomize(model, seed: int = 3):
    """Random kernels and biases (an exactness check needs no training)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "QDense":
            layer.kernel.assign(rng.uniform(-2, 2, layer.kernel.shape).astype(np.float32))
            layer.bias.assign(rng.uniform(-1, 1, layer.bias.shape).astype(np.float32))
    return model


def _front_quantizer_model(hidden_integer: int):
    """Functional spelling: a standalone saturating HGQ2 ``Quantizer`` layer on the inputs (k1 i3 f4), then
    QDense layers; the output layer's input quantizer wraps (HGQ2's WRAP) with ``hidden_integer`` integer bits."""
    from qtrigger.models.hgq import import_hgq

    import_hgq()
    import keras
    from hgq.config import QuantizerConfig
    from hgq.layers import QDense, Quantizer

    inputs = keras.Input((5,), name="inputs")
    x = Quantizer(QuantizerConfig("kif", "datalane", k0=1, i0=3, f0=4, overflow_mode="SAT", trainable=False),
                  name="input_q")(inputs)
    x = QDense(4, activation="relu", enable_iq=False, name="dense_0")(x)
    wrap = QuantizerConfig("kif", "datalane", k0=0, i0=hidden_integer, f0=3, overflow_mode="WRAP")
    x = QDense(1, iq_conf=wrap, name="output")(x)
    model = keras.Model(inputs, x, name="user_functional")
    model(_rows(2))
    return _randomize(model)


def _no_input_quantizer_model():
    """Sequential spelling whose first QDense has no input quantizer (``enable_iq=False``); the output layer's
    input quantizer wraps (HGQ2's default mode) with room for every accumulator of any saturated input."""
    from qtrigger.models.hgq import import_hgq

    import_hgq()
    import keras
    from hgq.config import QuantizerConfig
    from hgq.layers import QDense

    wrap = QuantizerConfig("kif", "datalane", k0=0, i0=14, f0=3, overflow_mode="WRAP")
    model = keras.Sequential([keras.Input((5,), name="inputs"), QDense(4, activation="relu", enable_iq=False),
                              QDense(1, iq_conf=wrap)], name="user_no_iq")
    model(_rows(2))
    return _randomize(model, seed=4)


def test_wrap_proven_unreachable_is_kept_and_exact():
    """A hidden WRAP quantizer wide enough for every accumulator the saturated inputs can give: proven, the
    reference equals the Keras model on stress rows at and beyond the input range (±2^20)."""
    from qtrigger.emulate.hgq import _read_stages, extract_hgq_network, reachable_wraps, settle_wraps
    from qtrigger.firmware.csim import hgq_stress_rows

    model = _front_quantizer_model(hidden_integer=12)
    assert reachable_wraps(_read_stages(model)) == {"output_iq": (0, 4)}
    assert settle_wraps(model) == {"output_iq": {"elements": 4, "wrap_reachable": 0, "saturated": 0}}
    assert model.get_layer("output").iq.quantizer.overflow_mode == "WRAP"
    network = extract_hgq_network(model)
    rows = np.concatenate([_rows(), hgq_stress_rows(network, _rows(), INPUT_TYPE)])
    rows = np.concatenate([rows, np.full((2, 5), 8.0), np.full((2, 5), -8.0)])  # at the input range's ends
    np.testing.assert_array_equal(network.forward(rows), model.predict(rows, verbose=0).astype(np.float64))


def test_reachable_wrap_saturates_and_the_model_then_equals_its_reference(tmp_path):
    """A narrow hidden WRAP quantizer: refused by the reference (one line), saturated by ``settle_wraps``; the
    saturated model (saved and loaded) equals the reference on rows beyond the input range, where the
    wrapping model gave other outputs."""
    from qtrigger.emulate.hgq import extract_hgq_network, settle_wraps
    from qtrigger.firmware.csim import hgq_stress_rows
    from qtrigger.models.hgq import load_hgq, save_hgq

    model = _front_quantizer_model(hidden_integer=1)
    with pytest.raises(QTriggerError, match=r"can overflow \(output_iq: \d of 4 elements\); qtrigger saturates"):
        extract_hgq_network(model)
    far = np.full((4, 5), 2.0**20) * np.array([[1], [-1], [1], [-1]]) * np.array([1, 1, -1, -1, 1])
    rows = np.concatenate([_rows(), far])
    wrapped = model.predict(rows, verbose=0).astype(np.float64)
    report = settle_wraps(model)
    assert report["output_iq"]["saturated"] == 1 and report["output_iq"]["wrap_reachable"] >= 1
    loaded = load_hgq(save_hgq(model, tmp_path / "settled.keras"))
    assert loaded.get_layer("output").iq.quantizer.overflow_mode == "SAT"
    np.testing.assert_array_equal(loaded.predict(rows, verbose=0), model.predict(rows, verbose=0))
    network = extract_hgq_network(loaded)
    rows = np.concatenate([rows, hgq_stress_rows(network, _rows(), INPUT_TYPE)])
    np.testing.assert_array_equal(network.forward(rows), loaded.predict(rows, verbose=0).astype(np.float64))
    assert np.any(wrapped != network.forward(rows[: len(wrapped)])), "the wrap was reachable in fact"


@pytest.mark.slow
def test_hls_check_without_input_quantizer(tmp_path, monkeypatch):
    """``hls check --model M.keras --inputs X.npy`` on a Sequential HGQ2 model without any input quantizer:
    checked behind a standalone HGQ2 ``Quantizer`` layer on the inputs' own grid, its proven hidden WRAP
    quantizer included (refused in one line when the inputs are on no grid). A changed kernel code in the
    reference is detected on the same C-simulation."""
    import qtrigger
    import qtrigger.firmware.hgq as fw
    from qtrigger.emulate.hgq import extract_hgq_network
    from qtrigger.emulate.network import input_type_from_data
    from qtrigger.models.hgq import save_hgq

    x = _rows()
    np.save(tmp_path / "x.npy", x)
    built, convert = [], fw.convert_hgq
    monkeypatch.setattr(fw, "convert_hgq", lambda *a, **k: built.append(convert(*a, **k)) or built[-1])
    no_iq = _no_input_quantizer_model()
    with pytest.raises(QTriggerError, match="dense.*: no input quantizer"):
        extract_hgq_network(no_iq)
    result = qtrigger.hls_check(model=save_hgq(no_iq, tmp_path / "no_iq.keras"), inputs=tmp_path / "x.npy")
    assert result.exact and (result.events, result.stress_events) == (300, 400), result.summary()
    assert result.qkeras_float32_mismatched_events == 0
    grid = input_type_from_data(x)
    assert result.input_type_source == "grid of the given inputs (the model has no input quantizer)"
    assert result.input_type == f"ap_fixed<{grid.width},{grid.integer}>", (result.input_type, grid)
    faulty = extract_hgq_network(fw.with_input_quantizer(no_iq, INPUT_TYPE))
    faulty.stages[0].kernel[0, 0] += 1
    assert int(np.any(fw._difference_lsb(built[-1], faulty, x), axis=1).sum()) > 0

    np.save(tmp_path / "off_grid.npy", x + 1e-9)
    with pytest.raises(QTriggerError, match="not on a fixed-point grid"):
        qtrigger.hls_check(model=tmp_path / "no_iq.keras", inputs=tmp_path / "off_grid.npy")
