"""DeepSets constituent networks (issue 21): config, the exact integer reference, hls4ml C-simulation.

Fast lane: the config, the integer reference against QKeras on synthetic constituent arrays,
order/padding independence and the one-line refusals. Slow: QAT with pruning and a saved,
reloaded model; hls4ml conversion of mean and max pooling models, C-simulation == integer reference with 0 mismatches on synthetic and
stress jets, and a too-narrow pooling accumulator diagnosed.
"""

import numpy as np
import pytest

from qtrigger.config import HLSConfig, ModelConfig, QuantizationConfig
from qtrigger.emulate.sets import extract_set_network, is_set_model
from qtrigger.errors import QTriggerError
from qtrigger.firmware.sets import scatter_padding, stress_jets, synthetic_jets
from qtrigger.fixedpoint import FixedType

CAP, FEATURES = 16, 4
INPUT_TYPE = FixedType(8, 4, True)


def deepsets(pooling="mean", phi=(8, 8), rho=(8,), n_out=1, seed=3, constituents=CAP):
    from qtrigger.models.build import build_model

    cfg = ModelConfig(form="deepsets", phi=list(phi), rho=list(rho), pooling=pooling, constituents=constituents)
    return build_model(FEATURES, n_out, cfg, QuantizationConfig(), INPUT_TYPE, seed=seed)


@pytest.fixture(scope="module", params=["mean", "max"])
def model(request):
    return deepsets(request.param)


def jets(n=400, seed=0):
    x, mask = synthetic_jets(INPUT_TYPE, n, CAP, FEATURES, seed)
    return np.concatenate([x, stress_jets(INPUT_TYPE, CAP, FEATURES, 120, seed + 1)]), mask


# ---------------------------------------------------------------- config


def test_config_deepsets_keys_and_defaults():
    assert ModelConfig().form == "mlp"
    cfg = ModelConfig(form="deepsets", phi=[16, 16], rho=[16], pooling="max", constituents=16)
    assert cfg.dense_widths == [16, 16, 16]
    with pytest.raises(ValueError, match="power of two"):
        ModelConfig(form="deepsets", pooling="mean", constituents=12)
    ModelConfig(form="deepsets", pooling="max", constituents=12)
    assert ModelConfig(form="deepsets", batchnorm=True).batchnorm  # folded into rho
    with pytest.raises(ValueError, match="batchnorm folds into the rho layers"):
        ModelConfig(form="deepsets", batchnorm=True, rho=[])


def test_model_from_config_layers_and_per_layer_quantizers():
    from qtrigger.config import LayerQuantization

    q = QuantizationConfig(layers=[LayerQuantization(weight_bits=4), {}, {}, LayerQuantization(bias_bits=10)])
    from qtrigger.models.build import build_model

    cfg = ModelConfig(form="deepsets", phi=[8, 8], rho=[8], constituents=CAP)
    m = build_model(FEATURES, 1, cfg, q, INPUT_TYPE)
    assert m.input_shape == (None, CAP, FEATURES) and is_set_model(m)
    net = extract_set_network(m)
    assert [s.name for s in net.phi] == ["phi_0", "phi_1"] and [s.name for s in net.rho] == ["dense_0", "output"]
    assert net.phi[0].weight_type.width == 4 and net.rho[-1].bias_type.width == 10
    assert net.pooling.name == "pool" and net.pooling.kind == "mean"
    floats = build_model(FEATURES, 1, cfg, q, INPUT_TYPE, quantized=False)
    assert floats.count_params() == m.count_params()


# ---------------------------------------------------------------- the integer reference


def test_reference_equals_qkeras_on_synthetic_and_stress_jets(model):
    x, _ = jets()
    net = extract_set_network(model)
    ref = net.forward_codes(x)
    qkeras = net.output_type.nearest_codes(model.predict(x.astype(np.float32), verbose=0))
    assert ref.shape == (len(x), 1)
    assert np.count_nonzero(ref != qkeras) == 0  # accumulators < 24 bits: float32 is exact here
    assert len(np.unique(ref)) > 20


def test_mean_pool_is_an_exact_shift():
    net = extract_set_network(deepsets("mean"))
    pool, phi_out = net.pooling, net.phi[-1].activation_type
    assert pool.result_type.frac == phi_out.frac + 4 and pool.accum_type.frac == phi_out.frac + 4
    assert pool.accum_type.max_value >= CAP * phi_out.max_value
    x, _ = jets(50)
    _, trace = net.forward_codes(x, return_all=True)
    phi_codes, pooled = trace[net.phi[-1].activation_name][0], trace["pool"][0]
    assert np.array_equal(pooled, phi_codes.sum(axis=1))


def test_permutation_and_padding_change_no_code(model):
    """Shuffling a jet's slots (real constituents permuted, padding moved between them) changes no code."""
    net = extract_set_network(model)
    x, mask = synthetic_jets(INPUT_TYPE, 500, CAP, FEATURES, 7)
    ref, trace = net.forward_codes(x, return_all=True)
    for seed in range(3):
        shuffled, shuffled_mask = scatter_padding(x, mask, seed)
        assert np.array_equal(shuffled_mask.sum(axis=1), mask.sum(axis=1)) and not np.array_equal(shuffled, x)
        codes, shuffled_trace = net.forward_codes(shuffled, return_all=True)
        assert np.array_equal(codes, ref)
        assert np.array_equal(shuffled_trace["pool"][0], trace["pool"][0])
    empty = net.forward_codes(np.zeros((1, CAP, FEATURES)))
    assert np.array_equal(empty, net.forward_codes(x[mask.sum(axis=1) == 0][:1]))


def test_wide_inputs_never_saturate_an_accumulator():
    """All slots at the input extremes: the pooled sum stays inside the pooling accumulator."""
    net = extract_set_network(deepsets("mean", phi=(16,)))
    x = np.full((2, CAP, FEATURES), INPUT_TYPE.max_value)
    x[1] = INPUT_TYPE.min_value
    _, trace = net.forward_codes(x, return_all=True)
    phi_codes = trace[net.phi[-1].activation_name][0]
    assert phi_codes.sum(axis=1).max() <= net.pooling.accum_type.max_code


# ---------------------------------------------------------------- refusals


def _functional(layers, cap=CAP):
    import tf_keras as keras
    from qkeras import QActivation, quantized_bits

    inputs = keras.Input((cap, FEATURES), name="constituents")
    x = QActivation(quantized_bits(8, 3, alpha=1), name="input_q")(inputs)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def _qdense(units, name, use_bias=False):
    from qkeras import QDense, quantized_bits

    return QDense(units, use_bias=use_bias, kernel_quantizer=quantized_bits(6, 0, alpha=1),
                  bias_quantizer=quantized_bits(6, 0, alpha=1), name=name)


def _relu(name):
    from qkeras import QActivation, quantized_relu

    return QActivation(quantized_relu(6, 2), name=name)


@pytest.mark.parametrize("case, match", [  # a φ bias and a max of signed values are exact (issue 27: test_i27_*)
    ("masking", "layer mask: Masking"),
    ("lambda", "layer sum: Lambda"),
    ("cap_12", "layer pool: mean over 12 constituents"),
    ("two_pools", "2 global pooling layers"),
])
def test_unsupported_deepsets_refused_in_one_line(case, match):
    import tf_keras as keras

    cap = 12 if case == "cap_12" else CAP
    if case == "masking":
        inputs = keras.Input((cap, FEATURES))
        x = keras.layers.Masking(name="mask")(inputs)
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(_qdense(4, "phi")(x)))
    elif case == "lambda":
        model = _functional([_qdense(4, "phi"), _relu("r"), keras.layers.Lambda(lambda t: t * 1.0, name="sum"),
                             keras.layers.GlobalAveragePooling1D(name="pool"), _qdense(1, "out", True)])
    elif case == "two_pools":
        model = _functional([_qdense(4, "phi"), keras.layers.GlobalAveragePooling1D(name="p1"),
                             keras.layers.Reshape((1, 4)), keras.layers.GlobalAveragePooling1D(name="p2")])
    else:
        model = _functional([_qdense(4, "phi"), _relu("r"), keras.layers.GlobalAveragePooling1D(name="pool"),
                             _qdense(1, "out", True)], cap)
    with pytest.raises(QTriggerError, match=match) as err:
        extract_set_network(model)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- hls4ml C-simulation (slow)


def _csim(model, network, x, tmp_path, name, overrides=None):
    from qtrigger.firmware.convert import convert
    from qtrigger.firmware.csim import compare_codes, csim_predict_codes

    project = convert(model, network, HLSConfig(), tmp_path / name, name, precision_overrides=overrides)
    codes = csim_predict_codes(project, network, x, strict=overrides is None)
    return project, compare_codes(codes, network.forward_codes(x), network.output_type)


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_csim_equals_integer_reference(pooling, tmp_path):
    """hls4ml (Dense on 3-D input → pointwise Conv1D, global pooling) == the integer reference, 0 mismatches."""
    model = deepsets(pooling, n_out=2)
    network = extract_set_network(model)
    x, mask = synthetic_jets(INPUT_TYPE, 2000, CAP, FEATURES, 11)
    x = np.concatenate([x, scatter_padding(x, mask, 1)[0], stress_jets(INPUT_TYPE, CAP, FEATURES, 1200, 12)])
    project, result = _csim(model, network, x, tmp_path, f"ds_{pooling}")
    assert result.jets == len(x) and result.mismatched_jets == 0, result.summary()
    cpp = (project.directory / "firmware" / f"ds_{pooling}.cpp").read_text()
    assert "pointwise_conv_1d_cl" in cpp and "global_pooling1d_cl" in cpp
    assert len(np.unique(result.reference_codes)) > 50


@pytest.mark.slow
def test_narrow_pooling_accumulator_is_diagnosed(tmp_path):
    """The pooling accumulator's fractional bits matter: without log2(cap) extra bits the mean rounds."""
    model = deepsets("mean")
    network = extract_set_network(model)
    narrow = network.pooling.result_type
    narrow = FixedType(narrow.width - 4, narrow.integer, narrow.signed)
    x, _ = synthetic_jets(INPUT_TYPE, 500, CAP, FEATURES, 5)
    _, result = _csim(model, network, x, tmp_path, "ds_narrow", {"pool": {"accum": narrow.hls(), "result": narrow.hls()}})
    assert result.mismatched_jets > 0


@pytest.mark.slow
def test_rho_batchnorm_folds_and_stays_exact_in_csim(tmp_path):
    """model.batchnorm on a DeepSets: QDenseBatchnorm in rho, trained, folded to QDense; phi stays bias-free;
    C-simulation equals the integer reference on jets and stress jets."""
    from qtrigger.config import HLSConfig, PruningConfig, TrainingConfig
    from qtrigger.firmware.check import hls_check
    from qtrigger.models.build import build_model
    from qtrigger.models.train import train

    cfg = ModelConfig(form="deepsets", phi=[8], rho=[8], constituents=CAP, batchnorm=True)
    qat = build_model(FEATURES, 1, cfg, QuantizationConfig(), INPUT_TYPE, seed=4)
    assert [type(l).__name__ for l in qat.layers].count("QDenseBatchnorm") == 1
    x, _ = synthetic_jets(INPUT_TYPE, 600, CAP, FEATURES, 22)
    y = (x[..., 0].sum(axis=1) > 0).astype(np.int64)
    result = train(qat, x[:400], y[:400], x[400:], y[400:], 1, TrainingConfig(epochs=3, verbose=False, threads=1),
                   PruningConfig(enabled=False), "QAT model", None)
    assert result.batchnorm and "QDenseBatchnorm" not in {type(l).__name__ for l in result.model.layers}
    net = extract_set_network(result.model)
    assert np.any(net.rho[0].bias_codes) and not np.any(net.phi[0].bias_codes)
    check = hls_check(result.model, x[400:], HLSConfig(), tmp_path / "prj", n_stress=1000)
    assert check.exact and check.events == 200 and check.stress_events == 1000, check.summary()


@pytest.mark.slow
def test_qat_pruning_and_saved_model_stay_exact(tmp_path):
    """QAT (keras fit) with pruning on constituent arrays; the stripped, saved and reloaded model stays exact."""
    from qtrigger.config import PruningConfig
    from qtrigger.models.build import apply_pruning, load_model, strip_pruning

    x, mask = synthetic_jets(INPUT_TYPE, 256, CAP, FEATURES, 21)
    y = (x[..., 0].sum(axis=1) > 0).astype(np.float32)
    model = apply_pruning(deepsets("max"), PruningConfig(target_sparsity=0.5, frequency=2, begin_fraction=0.0), 4, 2)
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    model = strip_pruning(model)
    model.save(tmp_path / "ds.h5", save_format="h5", include_optimizer=False)
    loaded = load_model(tmp_path / "ds.h5")
    net = extract_set_network(loaded)
    assert np.count_nonzero(net.phi[0].weight_codes) < net.phi[0].weight_codes.size  # pruned
    ref = net.forward_codes(x)
    assert np.array_equal(ref, extract_set_network(model).forward_codes(x))
    assert np.array_equal(ref, net.output_type.nearest_codes(loaded.predict(x.astype(np.float32), verbose=0)))


# ---------------------------------------------------------------- hls check on a saved DeepSets model


@pytest.fixture(scope="module")
def saved_deepsets(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "deepsets.h5"
    deepsets("mean", phi=(8,), rho=(4,)).save(path, save_format="h5")
    return path


@pytest.mark.parametrize("array, message", [
    (np.zeros((5, CAP, FEATURES + 1)), r"x\.npy: jets of shape \(16, 5\), the model takes \(16, 4\)"),
    (np.zeros((5, 8, FEATURES)), r"x\.npy: jets of shape \(8, 4\), the model takes \(16, 4\)"),
    (np.zeros((5, CAP * FEATURES)), r"x\.npy: 64 features per row, the model takes \(16, 4\)"),
    (np.zeros((2, 2, 2, 2)), r"x\.npy: expected a non-empty 2-D array .* or 3-D array"),
])
def test_hls_check_3d_inputs_refused_before_conversion(saved_deepsets, tmp_path, array, message, monkeypatch):
    import sys

    from qtrigger.runs.commands import hls_check

    monkeypatch.setattr(sys.modules["qtrigger.firmware.convert"], "convert", lambda *a, **k: pytest.fail("converted"))
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(QTriggerError, match=message) as err:
        hls_check(model=saved_deepsets, inputs=tmp_path / "x.npy")
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_hls_check_saved_deepsets_with_3d_inputs_is_bit_exact(saved_deepsets, tmp_path):
    """``qtrigger hls check --model deepsets.h5 --inputs jets.npy`` (3-D): bit-exact on jets and stress jets."""
    from qtrigger.runs.commands import hls_check

    x, _ = synthetic_jets(INPUT_TYPE, 300, CAP, FEATURES, 31)
    np.save(tmp_path / "jets.npy", x)
    result = hls_check(model=saved_deepsets, inputs=tmp_path / "jets.npy")
    assert result.exact and result.events == 300 and result.stress_events == 4000, result.summary()
    assert result.qkeras_float32_mismatched_events == 0


# ---------------------------------------------------------------- other spellings: TimeDistributed, a mask input


def _user_spelling(mask=True, phi_bias=False, seed=5):
    """A DeepSets as users write it: functional, TimeDistributed(QDense) φ, optional (cap, 1) mask Multiply."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    keras.utils.set_random_seed(seed)
    cands = keras.Input((CAP, FEATURES), name="cands")
    t = QActivation(quantized_bits(INPUT_TYPE.width, INPUT_TYPE.integer - 1, alpha=1), name="in_q")(cands)
    dense = QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                   use_bias=phi_bias, bias_initializer="ones" if phi_bias else "zeros")
    t = keras.layers.TimeDistributed(dense, name="phi_td")(t)
    # a QActivation acts on any shape; TimeDistributed(QActivation) does not reload from HDF5 in tf-keras
    t = QActivation(quantized_relu(8, 3), name="phi_relu")(t)
    inputs = [cands]
    if mask:
        m = keras.Input((CAP, 1), name="mask")
        t = keras.layers.Multiply(name="masked")([t, m])
        inputs.append(m)
    t = keras.layers.GlobalAveragePooling1D(name="pool")(t)
    out = QDense(1, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                 name="out")(t)
    return keras.Model(inputs, out)


def test_time_distributed_and_mask_spellings_rewrite_to_the_same_function():
    from qtrigger.firmware.set_spellings import canonical_set_model

    model = _user_spelling()
    chain, spelling = canonical_set_model(model)
    assert [type(l).__name__ for l in chain.layers] == ["InputLayer", "QActivation", "QDense", "QActivation",
                                                         "GlobalAveragePooling1D", "QDense"]
    assert (spelling.input_name, spelling.mask_name) == ("cands", "mask") and len(spelling.notes) == 2
    x, mask = synthetic_jets(INPUT_TYPE, 200, CAP, FEATURES, 8)
    x = x + np.where(mask[..., None], 0.0, 1.5)  # nonzero padding: only the mask removes it
    combined = spelling.inputs({"cands": x, "mask": mask.astype(float)}, "jets.npz")
    expected = model.predict([x, mask[..., None].astype(float)], verbose=0)
    assert np.array_equal(chain.predict(combined, verbose=0), expected)
    assert np.array_equal(extract_set_network(chain).forward(combined).ravel(), expected.ravel())
    with pytest.raises(QTriggerError, match=r"jets\.npz: no array named mask; it holds cands"):
        spelling.inputs({"cands": x}, "jets.npz")
    with pytest.raises(QTriggerError, match=r"jets\.npz: the mask holds values other than 0 and 1"):
        spelling.inputs({"cands": x, "mask": np.full(mask.shape, 0.5)}, "jets.npz")
    with pytest.raises(QTriggerError, match=r"x: one array, but the model takes two inputs \(cands, mask\)"):
        spelling.inputs(x, "x")


def test_time_distributed_alone_and_mask_after_a_phi_bias_kept():
    """TimeDistributed alone: unwrapped, no mask; a mask after a φ bias stays in the model (issue 27: test_i27_*)."""
    from qtrigger.firmware.set_spellings import canonical_set_model

    kept, spelling = canonical_set_model(_user_spelling(phi_bias=True))
    assert spelling.mask_kept and [t.shape[1:] for t in kept.inputs] == [(CAP, FEATURES), (CAP, 8)]
    chain, spelling = canonical_set_model(_user_spelling(mask=False))  # TimeDistributed alone
    assert spelling.mask_name is None and [l.name for l in chain.layers][2:4] == ["phi_td", "phi_relu"]


@pytest.mark.slow
def test_hls_check_saved_user_spelling_with_npz_is_bit_exact(tmp_path):
    """``hls check --model user.h5 --inputs jets.npz`` (TimeDistributed φ, mask input): 0 mismatches."""
    from qtrigger.runs.commands import hls_check

    _user_spelling().save(tmp_path / "user.h5", save_format="h5")
    x, mask = synthetic_jets(INPUT_TYPE, 300, CAP, FEATURES, 12)
    np.savez(tmp_path / "jets.npz", cands=x + np.where(mask[..., None], 0.0, 2.0), mask=mask[..., None].astype(float))
    result = hls_check(model=tmp_path / "user.h5", inputs=tmp_path / "jets.npz")
    assert result.exact and result.events == 300 and result.stress_events == 4000, result.summary()
    assert any("mask input mask applied at the input" in note for note in result.notes)
