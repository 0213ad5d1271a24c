"""`hls check` on QKeras models as users write them, and on bad files (issues 11 and 14).

Expected outcome per case (issue 11):

| case                                                        | outcome                                    |
|-------------------------------------------------------------|--------------------------------------------|
| 5  Sequential model, same weights as a functional one       | BIT-EXACT, like the functional twin         |
| 6  QDense(activation="quantized_relu(6,2)") (string/object), | converted exactly: 0 mismatches on real     |
|    activation=quantized_bits(...), "linear", None, "relu"   | jets and on the stress/tie set              |
|    Keras ReLU()/Activation("relu"/"linear"), QActivation     | converted exactly                           |
|    given as strings, Dropout, 3 classes                     |                                            |
|    first layer not an input quantizer                       | input type = the data's grid, exact; off-   |
|                                                             | grid data refused in one line               |
|    Dense (float weights), softmax, QActivation("relu"),     | one-line QTriggerError naming the layer,    |
|    two activations after one QDense                         | before any conversion                       |
| 11 --inputs with NaN/inf                                    | one line with the count of rows, before any |
|                                                             | conversion                                  |
|    --inputs wrong width, strings, 0 rows, 1-D, object, .npz | one line naming the file, before conversion |
|    --model not HDF5 / weights only / missing                | one line naming the file, before conversion |

Fast lane: file and layer validation (no compilation). Slow: every model form compiled
and C-simulated (about 25 s per model on one core).

Issue 27 (test_i27_*): DeepSets whose φ QDense layers have a bias, in users' spellings (mean/max
pooling, TimeDistributed or 3-D QDense, functional or Sequential, a mask multiplied after the bias):
the integer reference equals Keras (padded slots give φ(0)) and hls check is bit-exact.
"""

import numpy as np
import pytest

from conftest import small_config_dict
from qtrigger.config import HLSConfig, validate_config
from qtrigger.emulate.network import extract_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware.check import check_model_files, hls_check, logits_model


def qb(bits, integer):
    from qkeras import quantized_bits

    return quantized_bits(bits, integer, alpha=1)


def qdense(units, name, activation=None, bits=6):
    from qkeras import QDense

    return QDense(units, kernel_quantizer=qb(bits, 0), bias_quantizer=qb(bits, 0), activation=activation, name=name)


def as_model(layers, n_inputs, sequential):
    """The same layer list as a Sequential or a functional model."""
    import tf_keras as keras

    if sequential:
        return keras.Sequential([keras.Input((n_inputs,))] + layers)
    inputs = keras.Input((n_inputs,), name="features")
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


# ---------------------------------------------------------------- model forms (as users write them)


def separate_activations(t):
    """The qtrigger default shape: QActivation layers between QDense layers (objects)."""
    from qkeras import QActivation, quantized_relu

    return [QActivation(qb(t.width, t.integer - 1), name="input_q"), qdense(16, "dense_0"),
            QActivation(quantized_relu(6, 2), name="relu_0"), qdense(8, "dense_1"),
            QActivation(quantized_relu(6, 2), name="relu_1"), qdense(1, "output")]


def inline_quantizers(t):
    """Inline activations: a string, a quantized_relu object, quantized_bits, "linear"; 3 classes."""
    from qkeras import QActivation, quantized_relu

    return [QActivation(qb(t.width, t.integer - 1), name="input_q"),
            qdense(16, "dense_0", activation="quantized_relu(6,2)"),
            qdense(12, "dense_1", activation=quantized_relu(5, 1)),
            qdense(8, "dense_2", activation=qb(8, 2)),
            qdense(3, "output", activation="linear")]


def keras_activations(t):
    """Strings for QActivation, Keras ReLU/Activation layers, inline "relu", Dropout."""
    import tf_keras as keras
    from qkeras import QActivation

    return [QActivation(f"quantized_bits({t.width},{t.integer - 1},alpha=1)", name="input_q"),
            qdense(16, "dense_0"), keras.layers.ReLU(name="relu_0"), keras.layers.Dropout(0.1, name="drop_0"),
            qdense(12, "dense_1"), keras.layers.Activation("relu", name="act_1"),
            qdense(8, "dense_2", activation="relu"),
            qdense(8, "dense_3"), QActivation("quantized_relu(4,1)", name="relu_3"),
            qdense(4, "dense_4"), keras.layers.Activation("linear", name="lin_4"),
            qdense(1, "output")]


def tutorial_form(t):
    """As in the hls4ml tutorial (part 4): no input quantizer, quantized_relu(6), no bias, a final softmax."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_relu

    return [qdense(16, "fc1"), QActivation(quantized_relu(6), name="relu1"),
            QDense(8, kernel_quantizer=qb(6, 0), use_bias=False, name="fc2"), QActivation(quantized_relu(6), name="relu2"),
            qdense(3, "output"), keras.layers.Activation("softmax", name="softmax")]


FORMS = {  # name: (layers, outputs, softmax at the end)
    "separate_activations": (separate_activations, 1, False),
    "inline_quantizers_3class": (inline_quantizers, 3, False),
    "keras_activations": (keras_activations, 1, False),
    "tutorial_no_input_quantizer_softmax": (tutorial_form, 3, True),
}


@pytest.fixture(scope="module")
def prepared(default_sample, tmp_path_factory):
    from qtrigger.runs.pipeline import prepare_data

    return prepare_data(validate_config(small_config_dict(default_sample, tmp_path_factory.mktemp("forms"))))


def trained(prepared, form: str, sequential: bool, seed: int = 7):
    """The form's model trained for one epoch on real jets (same seed: same weights for both APIs)."""
    import tensorflow as tf

    make, n_out, softmax = FORMS[form]
    tf.keras.utils.set_random_seed(seed)
    model = as_model(make(prepared.preprocessor.input_type), prepared.inputs.shape[1], sequential)
    x, split = prepared.inputs, prepared.split
    if n_out == 1:
        y, loss = prepared.labels.astype(np.float32), "binary_crossentropy"
    else:  # three classes: signal, and background split at its median first feature
        median = np.median(x[prepared.labels == 0, 0])
        y, loss = np.where(prepared.labels == 1, 2, (x[:, 0] > median).astype(int)), "sparse_categorical_crossentropy"
    import tf_keras as keras

    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.get({"class_name": loss, "config": {"from_logits": not softmax}}))
    model.fit(x[split.train], y[split.train], epochs=1, batch_size=256, verbose=0)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("sequential", [False, True], ids=["functional", "sequential"])
@pytest.mark.parametrize("form", [f for f in FORMS if f != "separate_activations"])
def test_model_form_is_bit_exact(prepared, tmp_path, form, sequential):
    """Every form in both APIs; separate_activations: in test_sequential_and_functional_twins_same_verdict_and_codes."""
    model = trained(prepared, form, sequential)
    assert_form_exact(prepared, model, form, hls_check(model, prepared.inputs[prepared.split.test], HLSConfig(),
                                                       tmp_path / "prj", form, n_stress=2000))


def assert_form_exact(prepared, model, form: str, result) -> None:
    """The verdict of ``hls_check`` on a form's model: exact on every test jet and 2,000 stress rows, notes as expected."""
    x_test = prepared.inputs[prepared.split.test]
    assert result.events == len(x_test) > 500
    assert result.mismatched_events == 0 and result.max_abs_diff_lsb == 0, result.summary()
    assert result.stress_events == 2000 and result.stress_mismatched_events == 0, result.summary()
    assert result.qkeras_float32_mismatched_events == 0, result.summary()
    assert result.exact
    _, n_out, softmax = FORMS[form]
    logits, notes = logits_model(model)
    assert extract_network(logits, prepared.preprocessor.input_type).stages[-1].weight_codes.shape[1] == n_out
    assert len(result.notes) == len(notes) == int(softmax)
    if softmax:
        assert result.notes[0].startswith("final Activation(softmax) layer softmax left out: compared are the logits")
    if form.startswith("tutorial_no_input_quantizer"):
        from qtrigger.fixedpoint import parse_fixed

        assert result.input_type_source.startswith("grid of the given inputs")
        derived = parse_fixed(result.input_type)
        assert np.array_equal(derived.quantize(x_test), x_test)  # every real input held exactly
        assert derived.frac <= prepared.preprocessor.input_type.frac


@pytest.mark.slow
def test_sequential_and_functional_twins_same_verdict_and_codes(prepared, tmp_path):
    """Case 5: the same weights in both APIs give the same exact network and a BIT-EXACT verdict."""
    functional = trained(prepared, "separate_activations", False)
    sequential = as_model(separate_activations(prepared.preprocessor.input_type), prepared.inputs.shape[1], True)
    sequential.set_weights(functional.get_weights())
    x_test = prepared.inputs[prepared.split.test]
    a, b = extract_network(functional), extract_network(sequential)
    assert np.array_equal(a.forward_codes(x_test), b.forward_codes(x_test))
    assert b.input_name == sequential.layers[0].input.name.split(":")[0] != "input_q"
    verdicts = [hls_check(m, x_test, HLSConfig(), tmp_path / n, n, n_stress=2000) for n, m in
                (("functional", functional), ("sequential", sequential))]
    assert [v.exact for v in verdicts] == [True, True], [v.summary() for v in verdicts]
    for model, verdict in zip((functional, sequential), verdicts):  # the form's checks, for both APIs
        assert_form_exact(prepared, model, "separate_activations", verdict)


# ---------------------------------------------------------------- layers refused before conversion (fast)


def refused_layers():
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_relu

    t = (qb(10, 4),)
    return {
        "float Dense": ([QActivation(t[0], name="input_q"), keras.layers.Dense(4, name="plain"), qdense(1, "output")],
                        r"layer plain: Dense has float weights, not exact in fixed point; use QDense"),
        "hidden softmax": ([QActivation(t[0], name="input_q"), qdense(3, "dense_0"),
                            keras.layers.Activation("softmax", name="sm"), qdense(1, "output")],
                           r"layer sm: Activation\(softmax\) is not exact in firmware"),
        "float kernel": ([QActivation(t[0], name="input_q"),
                          QDense(4, kernel_quantizer=None, bias_quantizer=qb(6, 0), name="nokq"), qdense(1, "output")],
                         r"layer nokq: no kernel_quantizer and its float kernel values are not on a fixed-point grid"),
        "inline softmax": ([QActivation(t[0], name="input_q"), qdense(3, "output", activation="softmax")],
                           r"layer output: activation softmax is not exact in firmware"),
        "QActivation relu": ([QActivation(t[0], name="input_q"), qdense(4, "dense_0"), QActivation("relu", name="qrelu"),
                              qdense(1, "output")], r"layer qrelu: QActivation\('relu'\) is not a quantizer hls4ml converts"),
        "two activations": ([QActivation(t[0], name="input_q"), qdense(4, "dense_0", activation="quantized_relu(6,2)"),
                             QActivation(quantized_relu(6, 2), name="again"), qdense(1, "output")],
                            r"layer again: QActivation after the activation of dense_0"),
        "ReLU with max_value": ([QActivation(t[0], name="input_q"), qdense(4, "dense_0"),
                                 keras.layers.ReLU(max_value=6.0, name="relu6"), qdense(1, "output")],
                                r"layer relu6: ReLU\(max_value=6.0\) is not exact in firmware"),
    }


@pytest.mark.parametrize("case", ["float Dense", "hidden softmax", "inline softmax", "QActivation relu", "two activations",
                                  "ReLU with max_value", "float kernel"])
@pytest.mark.parametrize("sequential", [False, True], ids=["functional", "sequential"])
def test_unsupported_layer_refused_in_one_line(case, sequential, tmp_path, monkeypatch):
    layers, message = refused_layers()[case]
    model = as_model(layers, 3, sequential)
    _forbid_conversion(monkeypatch)
    with pytest.raises(QTriggerError, match=message) as err:
        hls_check(model, np.zeros((5, 3)), HLSConfig(), tmp_path / "prj")
    assert "\n" not in str(err.value)


def test_no_input_quantizer_needs_inputs_on_a_grid(tmp_path, monkeypatch):
    from qkeras import QActivation, quantized_relu

    model = as_model([qdense(4, "dense_0"), QActivation(quantized_relu(6, 2)), qdense(1, "output")], 3, False)
    _forbid_conversion(monkeypatch)
    with pytest.raises(QTriggerError, match=r"model has no input quantizer and the values are not on a fixed-point grid"):
        hls_check(model, np.full((5, 3), 0.1), HLSConfig(), tmp_path / "prj")
    with pytest.raises(QTriggerError, match=r"the first layer dense_0 \(QDense\) is not an input quantizer"):
        extract_network(model)


def test_input_type_from_data_is_the_smallest_exact_grid():
    from qtrigger.emulate.network import input_type_from_data

    x = np.array([[0.25, -3.0], [7.75, 0.5]])
    t = input_type_from_data(x)
    assert (t.frac, t.signed, t.rounding, t.saturation) == (2, True, "RND_CONV", "SAT")
    assert np.array_equal(t.quantize(x), x) and t.max_value >= 7.75 and t.min_value <= -3.0
    assert input_type_from_data(np.array([[1.0, 2.0]])).frac == 0


def test_inline_activation_names_follow_hls4ml(tmp_path):
    """Inline activations get hls4ml's split-layer names and exact types."""
    from qkeras import QActivation, quantized_relu

    model = as_model([QActivation(qb(8, 3), name="input_q"), qdense(4, "d0", activation="quantized_relu(6,2)"),
                      qdense(4, "d1", activation=quantized_relu(5, 1)), qdense(4, "d2", activation=qb(8, 2)),
                      qdense(4, "d3", activation="relu"), qdense(2, "out", activation="linear")], 3, True)
    network = extract_network(model)
    assert [(s.activation_name, str(s.activation_type)) for s in network.stages[:3]] == [
        ("d0_quantized_relu", "ap_ufixed<6,2,RND_CONV,SAT>"), ("d1_quantized_relu", "ap_ufixed<5,1,RND_CONV,SAT>"),
        ("d2_quantized_bits", "ap_fixed<8,3,RND_CONV,SAT>")]
    relu = network.stages[3]
    assert relu.activation_name == "d3_relu" and not relu.activation_type.signed
    assert relu.activation_type.frac == relu.accum_type.frac and relu.activation_type.width == relu.accum_type.width - 1
    assert network.stages[4].activation_type is None
    assert network.input_name == model.get_config()["layers"][0]["config"]["name"]


def _no_conversion(*args, **kwargs):
    raise AssertionError("conversion started before the inputs were validated")


def _forbid_conversion(monkeypatch):
    """Make any hls4ml conversion fail the test (``qtrigger.firmware.convert`` the module, not the function)."""
    import sys

    monkeypatch.setattr(sys.modules["qtrigger.firmware.convert"], "convert", _no_conversion)


# ---------------------------------------------------------------- files (case 11 and the --inputs/--model tracebacks)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from qtrigger.config import ModelConfig, QuantizationConfig
    from qtrigger.fixedpoint import FixedType
    from qtrigger.models.build import build_model

    path = tmp_path_factory.mktemp("model") / "model.h5"
    build_model(4, 1, ModelConfig(hidden=[4]), QuantizationConfig(), FixedType(10, 5, True, "RND_CONV", "SAT")).save(path)
    return path


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    else:
        np.save(path, content, allow_pickle=True)
    return path


NAN_ROWS = np.ones((50, 4))
NAN_ROWS[3, 1], NAN_ROWS[7, 0] = np.nan, np.inf
INPUT_CASES = {
    "non-finite": (NAN_ROWS, r"inputs\.npy: 2 of 50 rows contain NaN or inf \(first: row 3\)"),
    "wrong width": (np.zeros((5, 3)), r"inputs\.npy: 3 features per row; the model takes 4"),
    "strings": (np.array([["a", "b", "c", "d"]]), r"inputs\.npy: values of dtype <U1; expected real numbers"),
    "no rows": (np.zeros((0, 4)), r"inputs\.npy: shape \(0, 4\) has no rows"),
    "1-D": (np.zeros(4), r"inputs\.npy: shape \(4,\); expected a 2-D array"),
    "objects": (np.array([[1, None, 2, 3]], dtype=object), r"inputs\.npy: not a readable \.npy array of numbers \(object arrays are refused\)"),
    "not npy": (b"hello", r"inputs\.npy: not a readable \.npy array of numbers"),
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
def test_bad_inputs_file_one_line_before_conversion(case, saved_model, tmp_path, monkeypatch):
    content, message = INPUT_CASES[case]
    path = _write(tmp_path, "inputs.npy", content)
    _forbid_conversion(monkeypatch)
    with pytest.raises(QTriggerError, match=message) as err:
        check_model_files(saved_model, path, HLSConfig(), tmp_path / "prj")
    assert "\n" not in str(err.value) and not (tmp_path / "prj").exists()


def test_npz_with_more_arrays_than_inputs_refused(saved_model, tmp_path, monkeypatch):
    """An .npz holds one array per model input (by name); a one-input model refuses two, before conversion."""
    path = _write(tmp_path, "inputs.npz", {"x": np.zeros((3, 4)), "y": np.zeros((3, 4))})
    with pytest.raises(QTriggerError, match=r"inputs\.npz: 2 arrays \(x, y\); the model takes one input"):
        check_model_files(saved_model, path, HLSConfig(), tmp_path / "prj")
    assert not (tmp_path / "prj").exists()


MODEL_CASES = {
    "not HDF5": (b"not a model", r"model\.h5: not an HDF5 file; expected a Keras model saved as HDF5"),
    "missing": (None, r"model\.h5: no such model file"),
    "weights only": ("weights", r"model\.h5: HDF5 without a model_config \(weights only\?\)"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_bad_model_file_one_line_before_conversion(case, saved_model, tmp_path, monkeypatch):
    import h5py

    content, message = MODEL_CASES[case]
    model_path = tmp_path / "model.h5"
    if content == "weights":
        with h5py.File(model_path, "w") as handle:
            handle.create_dataset("kernel", data=np.zeros(3))
    elif content is not None:
        model_path.write_bytes(content)
    inputs = _write(tmp_path, "inputs.npy", np.zeros((5, 4)))
    _forbid_conversion(monkeypatch)
    with pytest.raises(QTriggerError, match=message):
        check_model_files(model_path, inputs, HLSConfig(), tmp_path / "prj")


def test_missing_inputs_file(saved_model, tmp_path):
    with pytest.raises(QTriggerError, match=r"nothing\.npy: no such file; expected a \.npy array"):
        check_model_files(saved_model, tmp_path / "nothing.npy", HLSConfig(), tmp_path / "prj")


# ---------------------------------------------------------------- issue 27: DeepSets with φ biases, as users write them
# φ runs on every slot, padding included: a padded slot gives φ(0) = act(bias), which Keras averages in (or takes
# into the max); a mask multiplied into φ zeroes its slots where the model multiplies it. Tiny models: φ [4],
# 8 slots, 3 features; one hls4ml compile per spelling.

I27_CAP, I27_FEATURES = 8, 3
I27_SPELLINGS = ["functional_mean_td", "functional_max_3d_signed", "sequential_max_td_no_quantizer",
                 "sequential_mean_3d"]


def _i27_input_type():
    from qtrigger.fixedpoint import FixedType

    return FixedType(8, 4, True)


def _phi(units, name, activation=None):
    """A QDense with a nonzero bias (quantized to 6 bits): φ(0) = act(bias) != 0 on padded slots."""
    import tf_keras as keras
    from qkeras import QDense

    return QDense(units, kernel_quantizer=qb(6, 0), bias_quantizer=qb(6, 0), activation=activation, name=name,
                  bias_initializer=keras.initializers.RandomUniform(-1.0, 1.0))


def i27_model(spelling: str):
    """A φ-with-bias DeepSets in one of the spellings users write (mean/max, TimeDistributed/3-D Dense, both APIs)."""
    import tf_keras as keras
    from qkeras import QActivation, quantized_relu

    keras.utils.set_random_seed(27)
    td, in_q = keras.layers.TimeDistributed, QActivation(qb(8, 3), name="in_q")
    mean, top = keras.layers.GlobalAveragePooling1D(name="pool"), keras.layers.GlobalMaxPooling1D(name="pool")
    layers = {
        "functional_mean_td": [in_q, td(_phi(4, "phi0"), name="phi_td"),
                               QActivation(quantized_relu(6, 2), name="phi_relu"), mean, _phi(1, "out")],
        "functional_max_3d_signed": [in_q, _phi(4, "phi0", "quantized_relu(6,2)"), _phi(4, "phi1"),
                                     QActivation(qb(6, 2), name="phi_q"), top, _phi(4, "rho", "relu"), _phi(2, "out")],
        "sequential_max_td_no_quantizer": [td(_phi(4, "phi0", "quantized_relu(6,2)"), name="phi_td"), top,
                                           _phi(1, "out")],
        "sequential_mean_3d": [in_q, _phi(4, "phi0"), keras.layers.Activation("relu", name="phi_relu"), mean,
                               _phi(1, "out")],
    }[spelling]
    if spelling.startswith("sequential"):
        return keras.Sequential([keras.Input((I27_CAP, I27_FEATURES))] + layers)
    x = inputs = keras.Input((I27_CAP, I27_FEATURES), name="cands")
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def i27_jets(n=300, seed=0, padding=0.0):
    """Random jets (0 to 8 real slots), all-padding jets and one-constituent jets; (x, 0/1 mask).

    ``padding`` fills the padded slots (nonzero: only a mask removes it).
    """
    from qtrigger.firmware.sets import synthetic_jets

    t = _i27_input_type()
    x, mask = synthetic_jets(t, n, I27_CAP, I27_FEATURES, seed)
    single, single_mask = synthetic_jets(t, n // 4, I27_CAP, I27_FEATURES, seed + 1, max_real=1)
    x = np.concatenate([x, np.zeros((n // 4, I27_CAP, I27_FEATURES)), single])
    mask = np.concatenate([mask, np.zeros((n // 4, I27_CAP), bool), single_mask]).astype(np.float64)
    return x + padding * (1 - mask[..., None]), mask


def _i27_network(model, x):
    """(the user's model rewritten, its exact integer network) as hls check builds them."""
    from qtrigger.emulate.network import has_input_quantizer, input_type_from_data
    from qtrigger.emulate.sets import extract_set_network
    from qtrigger.firmware.set_spellings import canonical_set_model

    canonical, _ = canonical_set_model(model)
    input_type = None if has_input_quantizer(canonical) else input_type_from_data(x)
    return canonical, extract_set_network(canonical, input_type)


@pytest.mark.parametrize("spelling", I27_SPELLINGS)
def test_i27_phi_bias_reference_equals_keras_padding_gives_phi_of_zero(spelling):
    """The integer reference == the user's Keras model on every jet (all-padding and one-constituent ones too); an
    all-padding jet pools φ(0) != 0, and a reference that took padded slots as 0 would differ from Keras on jets
    with padding (and only there)."""
    import dataclasses

    from qtrigger.emulate.sets import MaskProduct

    model = i27_model(spelling)
    x, mask = i27_jets()
    _, net = _i27_network(model, x)
    keras_codes = net.output_type.nearest_codes(model.predict(x.astype(np.float32), verbose=0))
    assert np.count_nonzero(net.forward_codes(x) != keras_codes) == 0
    _, trace = net.forward_codes(np.zeros((1, I27_CAP, I27_FEATURES)), return_all=True)
    last = net.phi[-1]
    phi0_codes, phi0_type = trace[last.activation_name or last.name]
    pooled = trace["pool"][0][0] * net.pooling.result_type.lsb
    assert np.any(phi0_codes != 0) and np.array_equal(pooled, phi0_codes[0, 0] * phi0_type.lsb)  # every slot φ(0)
    zeroed = MaskProduct("padding_as_zero", "mask", len(net.phi) - 1, False, phi0_codes.shape[-1], phi0_type)
    careless = dataclasses.replace(net, mask=zeroed)  # padded slots zeroed after φ
    differs = (careless.forward_codes(np.concatenate([x, mask[..., None]], axis=2)) != keras_codes).any(axis=1)
    padded = mask.sum(axis=1) < I27_CAP
    assert differs[padded].sum() > 0 and differs[~padded].sum() == 0 and (~padded).sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize("spelling", I27_SPELLINGS)
def test_i27_hls_check_phi_bias_deepsets_bit_exact(spelling, tmp_path):
    """``hls check`` on φ-with-bias DeepSets: 0 mismatches on random jets (with all-padding and one-constituent
    jets) and on 1,000 stress jets (ties, saturation, one constituent, shuffled slots, all padding)."""
    model = i27_model(spelling)
    x, mask = i27_jets(seed=3)
    assert (mask.sum(axis=1) == 0).sum() >= 75 and (mask.sum(axis=1) == 1).sum() >= 50
    result = hls_check(model, x, HLSConfig(), tmp_path / "prj", "i27", n_stress=1000)
    assert result.events == len(x) and result.mismatched_events == 0 and result.max_abs_diff_lsb == 0, result.summary()
    assert result.stress_events == 1000 and result.stress_mismatched_events == 0, result.summary()
    assert result.qkeras_float32_mismatched_events == 0 and result.exact, result.summary()
    assert result.input_type_source.startswith("grid" if "no_quantizer" in spelling else "model input quantizer")


def i27_masked_model(where: str = "after_activation", twice: bool = False):
    """Functional, TimeDistributed φ with a bias and a (cap,) mask input reshaped to (cap, 1) and multiplied in
    ``before_activation``, ``after_activation`` (then mean pooling) or before a second φ layer with a bias."""
    import tf_keras as keras
    from qkeras import QActivation, quantized_relu

    keras.utils.set_random_seed(28)
    cands, mask = keras.Input((I27_CAP, I27_FEATURES), name="cands"), keras.Input((I27_CAP,), name="mask")
    m = keras.layers.Reshape((I27_CAP, 1), name="mask_r")(mask)
    t = QActivation(qb(8, 3), name="in_q")(cands)
    t = keras.layers.TimeDistributed(_phi(4, "phi0"), name="phi_td")(t)
    if where == "before_activation":
        t = keras.layers.Multiply(name="masked")([m, t])
    t = QActivation(quantized_relu(6, 2), name="phi_relu")(t)
    if where != "before_activation":
        t = keras.layers.Multiply(name="masked")([t, m])
    if where == "before_phi_bias":
        t = _phi(4, "phi1", "quantized_relu(6,2)")(t)
    if twice:
        t = keras.layers.Multiply(name="masked_again")([t, m])
    t = keras.layers.GlobalAveragePooling1D(name="pool")(t)
    return keras.Model([cands, mask], _phi(1, "out")(t))


@pytest.mark.parametrize("where", ["before_activation", "after_activation", "before_phi_bias"])
def test_i27_mask_after_phi_bias_kept_equals_keras(where):
    """A mask multiplied after a φ bias stays in the model (second input, the mask repeated per value): the
    reference == the user's Keras model with garbage in the padded slots; moving the mask to the input (the
    bias-free rewrite) would differ from Keras."""
    from qtrigger.emulate.sets import extract_set_network
    from qtrigger.firmware.set_spellings import canonical_set_model

    model = i27_masked_model(where)
    x, mask = i27_jets(padding=1.5)
    canonical, spelling = canonical_set_model(model)
    assert spelling.mask_kept and spelling.array_shape == (I27_CAP, I27_FEATURES + 1)
    assert [tuple(t.shape[1:]) for t in canonical.inputs] == [(I27_CAP, I27_FEATURES), (I27_CAP, 4)]
    assert spelling.notes[-1].startswith("mask input mask kept: multiplied into the output of ")
    net = extract_set_network(canonical)
    assert (net.mask.stage, net.mask.before_activation) == (0, where == "before_activation")
    packed = spelling.inputs({"cands": x, "mask": mask}, "jets.npz")
    keras_codes = net.output_type.nearest_codes(model.predict([x, mask], verbose=0))
    assert np.count_nonzero(net.forward_codes(packed) != keras_codes) == 0
    assert np.array_equal(canonical.predict(net.model_inputs(packed), verbose=0), model.predict([x, mask], verbose=0))
    moved = net.output_type.nearest_codes(model.predict([x * mask[..., None], np.ones_like(mask)], verbose=0))
    assert np.count_nonzero((moved != keras_codes).any(axis=1)) > 0


def test_i27_mask_twice_after_phi_bias_refused_in_one_line(tmp_path, monkeypatch):
    """Two mask products after a φ bias: refused in one line naming the layer, before any conversion."""
    x, mask = i27_jets(n=8)
    _forbid_conversion(monkeypatch)
    with pytest.raises(QTriggerError, match=r"layer masked_again: the mask is multiplied in 2 times after layers with "
                                            r"a bias; multiply it in once") as err:
        hls_check(i27_masked_model(twice=True), {"cands": x, "mask": mask}, HLSConfig(), tmp_path / "prj")
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_i27_hls_check_saved_masked_phi_bias_bit_exact(tmp_path):
    """``hls check --model user.h5 --inputs jets.npz`` (mask kept after a φ bias, padding filled with 1.5):
    0 mismatches on jets and 4,000 stress jets (all-padding under a zero mask too)."""
    from qtrigger.runs.commands import hls_check as cli_check

    i27_masked_model().save(tmp_path / "user.h5", save_format="h5")
    x, mask = i27_jets(seed=5, padding=1.5)
    np.savez(tmp_path / "jets.npz", cands=x, mask=mask)
    result = cli_check(model=tmp_path / "user.h5", inputs=tmp_path / "jets.npz")
    assert result.events == len(x) and result.mismatched_events == 0, result.summary()
    assert result.stress_events == 4000 and result.stress_mismatched_events == 0, result.summary()
    assert result.qkeras_float32_mismatched_events == 0 and result.exact, result.summary()
    assert sum("mask input mask kept" in note for note in result.notes) == 1
