"""``quantization.method: hgq`` (issue 30): the config, the method registry, and HGQ2 beside QKeras in one process.

The HGQ2 tests need the arrangement ``make install`` sets up (hgq2 in ``<venv>/hgq2``, or ``$QTRIGGER_HGQ2_PATH``);
without it they are skipped, with the reason.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from qtrigger.config import ModelConfig, PruningConfig, QuantizationConfig, TrainingConfig
from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.models.build import METHODS, build_model, check_runnable, quant_method

HGQ_CFG = {"method": "hgq", "hgq": {"beta": 1e-5, "beta_final": 1e-4}}
INPUT_TYPE = FixedType(10, 4)
TRAINING = TrainingConfig(epochs=3, batch_size=64, threads=1, verbose=False, early_stopping_patience=3)


def _hgq_installed() -> bool:
    from qtrigger.models.hgq import hgq2_dir

    return (hgq2_dir() / "hgq" / "__init__.py").is_file()


needs_hgq = pytest.mark.skipif("not _hgq_installed()",
                               reason="hgq2 not installed: `make install` puts it in <venv>/hgq2 "
                                      "($QTRIGGER_HGQ2_PATH names another folder)")


def test_method_defaults_to_qkeras_and_dumps_as_before():
    """A QKeras section keeps its resolved form (and scan trial hashes) byte for byte."""
    q = QuantizationConfig()
    assert q.method == "qkeras" and quant_method(q) is METHODS["qkeras"]
    assert set(q.model_dump(mode="json")) == {"enabled", "weight_bits", "weight_integer", "bias_bits",
                                              "bias_integer", "activation_bits", "activation_integer", "layers"}
    dumped = QuantizationConfig(**HGQ_CFG).model_dump(mode="json")
    assert dumped["method"] == "hgq" and dumped["hgq"]["beta_final"] == 1e-4
    assert QuantizationConfig(**dumped) == QuantizationConfig(**HGQ_CFG)


def test_beta_schedule_is_log_linear():
    hgq = QuantizationConfig(**HGQ_CFG).hgq
    betas = [hgq.beta_at(e, 3) for e in range(3)]
    assert betas[0] == 1e-5 and betas[2] == pytest.approx(1e-4) and betas[1] == pytest.approx(np.sqrt(1e-9))
    assert QuantizationConfig(method="hgq").hgq.beta_at(7, 10) == 1e-5


def test_unknown_method_and_overflow_mode_are_refused():
    with pytest.raises(ValueError, match="not a registered quantization method"):
        QuantizationConfig(method="brevitas")
    with pytest.raises(ValueError):
        QuantizationConfig(method="hgq", hgq={"overflow_mode": "SAT_SYM"})
    assert QuantizationConfig(method="hgq", hgq={"overflow_mode": "WRAP"}).hgq.overflow_mode == "WRAP"


@pytest.mark.parametrize("model, pruning, message", [
    ({"form": "deepsets"}, {"enabled": False}, "builds model.form mlp only so far, not 'deepsets'"),
    ({}, {}, "learns its own sparsity"),
    ({"batchnorm": True}, {"enabled": False}, "does not fold batch normalization"),
])
def test_hgq_runs_refused_in_one_line(model, pruning, message):
    with pytest.raises(QTriggerError, match=message) as error:
        check_runnable(ModelConfig(**model), QuantizationConfig(**HGQ_CFG), PruningConfig(**pruning))
    assert "\n" not in str(error.value)


def test_runnable_methods_pass_the_method_check():
    check_runnable(ModelConfig(form="deepsets"), QuantizationConfig(), PruningConfig())
    check_runnable(ModelConfig(), QuantizationConfig(**HGQ_CFG), PruningConfig(enabled=False))


def test_missing_hgq2_is_one_line(tmp_path, monkeypatch):
    from qtrigger.models.hgq import import_hgq

    monkeypatch.setenv("QTRIGGER_HGQ2_PATH", str(tmp_path))
    with pytest.raises(QTriggerError, match="HGQ2 is not installed in .*make install"):
        import_hgq()


def test_hgq2_compatibility_qkeras_is_refused(tmp_path, monkeypatch):
    """hgq2's own ``qkeras`` package, found first, is named instead of silently shadowing QKeras."""
    from qtrigger.models.hgq import _check_no_shadow

    (tmp_path / "qkeras").mkdir()
    (tmp_path / "qkeras" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "qkeras", raising=False)
    with pytest.raises(QTriggerError, match="compatibility package"):
        _check_no_shadow(tmp_path)


def _rows(n: int = 300, seed: int = 0):
    """A few hundred rows on the 10-bit input grid, a learnable binary label."""
    rng = np.random.default_rng(seed)
    x = INPUT_TYPE.quantize_codes(rng.normal(size=(n, 5))) * INPUT_TYPE.lsb
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.float64)


def _train_hgq(seed: int = 1):
    from qtrigger.models.hgq import train_hgq

    quant = QuantizationConfig(**HGQ_CFG)
    model = build_model(5, 1, ModelConfig(hidden=[4]), quant, INPUT_TYPE, True, seed)
    x, y = _rows()
    return train_hgq(model, x[:240], y[:240], x[240:], y[240:], 1, TRAINING, quant.hgq)


def _real_qkeras():
    """QKeras 0.9.0 from the environment, with the layers and quantizers the QKeras path uses."""
    qkeras = importlib.import_module("qkeras")
    from qkeras import QActivation, QDense, quantized_bits

    site = Path(qkeras.__file__).resolve().parent
    assert qkeras.__version__ == "0.9.0"
    assert (site / "qlayers.py").is_file() and (site / "quantizers.py").is_file(), site
    for obj in (QDense, QActivation, quantized_bits):
        assert Path(sys.modules[obj.__module__].__file__).resolve().parent == site
    return site


@pytest.fixture(scope="module")
def trained():
    """One HGQ2 [4] MLP trained on 240 rows (3 epochs)."""
    if not _hgq_installed():
        pytest.skip("hgq2 not installed: `make install` puts it in <venv>/hgq2")
    return _train_hgq()


@pytest.fixture(scope="module")
def scrambled(trained, tmp_path_factory):
    """A copy of the trained model with random learned widths per element: 0-bit weights, negative integer
    bits, unsigned and narrow inputs (what a long training with a large β reaches)."""
    from qtrigger.models.hgq import load_hgq, save_hgq

    model = load_hgq(save_hgq(trained.model, tmp_path_factory.mktemp("hgq") / "model.keras"))
    rng = np.random.default_rng(7)
    for layer in model.layers:
        if type(layer).__name__ != "QDense":
            continue
        for quantizer in (layer.kq, layer.bq):
            q = quantizer.quantizer
            q._b.assign(rng.integers(0, 6, q._b.shape).astype(np.float32))
            q._i.assign(rng.integers(-2, 3, q._i.shape).astype(np.float32))
            q._k.assign(rng.integers(0, 2, q._k.shape).astype(np.float32))
        q = layer.iq.quantizer
        q._i.assign(rng.integers(0, 4, q._i.shape).astype(np.float32))
        q._f.assign(rng.integers(-1, 6, q._f.shape).astype(np.float32))
        q._k.assign(rng.integers(0, 2, q._k.shape).astype(np.float32))
    return model


def _check_rows(network, model):
    """Test rows and the stress rows (ties of both grids, beyond the input range)."""
    from qtrigger.firmware.hgq import hgq_stress_rows

    x, _ = _rows(300, seed=5)
    return x, hgq_stress_rows(network, x, INPUT_TYPE)


def test_install_keeps_real_qkeras_and_hgq2_trains(trained):
    """After the install, ``qkeras`` is QKeras 0.9.0 and HGQ2 trains, in one process; QKeras still builds after."""
    from qtrigger.models.hgq import hgq2_dir

    site = _real_qkeras()
    assert not (hgq2_dir() / "qkeras").exists(), "make install deletes hgq2's compatibility qkeras package"
    result = trained
    assert result.epochs_run == TRAINING.epochs and np.isfinite(result.history["val_loss"]).all()
    assert result.history["beta"][0] == pytest.approx(1e-5) and result.ebops > 0
    assert set(result.widths) == {"dense_0", "output"}
    assert _real_qkeras() == site
    qkeras_model = build_model(5, 1, ModelConfig(hidden=[4]), QuantizationConfig(), INPUT_TYPE, True, 1)
    assert type(qkeras_model.layers[-1]).__name__ == "QDense"
    assert type(qkeras_model.layers[-1]).__module__.startswith("qkeras.")


def test_hgq_training_is_reproducible_and_saves(trained, tmp_path):
    """Same seed and threads, same weights; a saved ``.keras`` model loads and gives the same logits."""
    from qtrigger.models.hgq import load_hgq, save_hgq

    again = _train_hgq()
    for a, b in zip(trained.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x, _ = _rows(50, seed=3)
    loaded = load_hgq(save_hgq(trained.model, tmp_path / "model_hgq.keras"))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), trained.model.predict(x, verbose=0))


@pytest.mark.parametrize("which", ["trained", "scrambled"])
def test_reference_reads_per_element_widths(which, request):
    """The int64 reference equals the Keras-3 model on test and stress rows, trained or with random widths."""
    from qtrigger.emulate.hgq import extract_hgq_network

    model = request.getfixturevalue(which)
    model = getattr(model, "model", model)
    network = extract_hgq_network(model)
    if which == "scrambled":
        assert len(np.unique(network.stages[0].inputs.frac)) > 1
    for rows in _check_rows(network, model):
        np.testing.assert_array_equal(network.forward(rows), model.predict(rows, verbose=0).astype(np.float64))


def _sequential_hgq(overflow: str = "SAT", input_quantizer: bool = True):
    """A user's spelling: ``keras.Sequential`` of HGQ2 QDense layers, HGQ2's default quantizers otherwise."""
    from qtrigger.models.hgq import import_hgq

    import_hgq()
    import keras
    from hgq.config import QuantizerConfigScope
    from hgq.layers import QDense

    with QuantizerConfigScope(place="datalane", overflow_mode=overflow):
        return keras.Sequential([keras.Input((5,)), QDense(4, activation="relu", enable_iq=input_quantizer),
                                 QDense(1)], name="user_sequential")


def test_reference_refuses_reachable_wrap_and_a_missing_input_quantizer(trained):
    from qtrigger.emulate.hgq import extract_hgq_network

    with pytest.raises(QTriggerError, match=r"wrap mode where the saturated input range can overflow \(.*"
                                            r"5 of 5 elements.*qtrigger saturates there") as error:
        extract_hgq_network(_sequential_hgq(overflow="WRAP"))
    assert "\n" not in str(error.value)
    with pytest.raises(QTriggerError, match="no input quantizer .enable_iq=False and no HGQ2 Quantizer layer"):
        extract_hgq_network(_sequential_hgq(input_quantizer=False))


@needs_hgq
def test_hls_check_unreadable_keras_file_is_one_line(tmp_path):
    import qtrigger

    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    np.save(tmp_path / "x.npy", np.zeros((3, 5)))
    with pytest.raises(QTriggerError, match=r"bad.keras: not a Keras-3 model qtrigger can read with HGQ2 \(") as error:
        qtrigger.hls_check(model=tmp_path / "bad.keras", inputs=tmp_path / "x.npy")
    assert "\n" not in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["functional", "sequential"])
def test_hls_check_proves_saved_hgq_models_exact(spelling, scrambled, tmp_path):
    """``qtrigger hls check --model M.keras --inputs X.npy`` on a saved HGQ2 model, as on a QKeras ``.h5``."""
    import qtrigger
    from qtrigger.models.hgq import save_hgq

    model = scrambled if spelling == "functional" else _sequential_hgq()
    if spelling == "sequential":  # biases far beyond their learned range: HGQ2's default bias quantizer wraps them
        for layer in model.layers:
            layer.bias.assign(np.random.default_rng(2).uniform(-300, 300, layer.bias.shape).astype(np.float32))
    x, _ = _rows(300, seed=5)
    np.save(tmp_path / "x.npy", x)
    result = qtrigger.hls_check(model=save_hgq(model, tmp_path / f"{spelling}.keras"), inputs=tmp_path / "x.npy")
    assert (result.events, result.stress_events) == (300, 400)
    assert result.exact and result.qkeras_float32_mismatched_events == 0, result.summary()


@pytest.mark.slow
def test_rtl_of_hgq_model_equals_reference(scrambled, tmp_path):
    """The run's RTL stage (da4ml trace of the reference's per-element quantizers, Verilator) on random learned
    widths: equal to the reference on the test rows, input-grid ties and over-range rows; da4ml's own HGQ2
    converter (``trace_model``, its interpreter) agrees on the same model and the stress rows."""
    pytest.importorskip("da4ml")
    from da4ml.converter import trace_model
    from da4ml.trace import HWConfig, comb_trace

    from qtrigger.config import HLSConfig
    from qtrigger.emulate.sets import extract_any_network
    from qtrigger.firmware.csim import hgq_stress_rows
    from qtrigger.firmware.rtl import HWCONFIG, SOLVER_OPTIONS, _kif, raw_input_type
    from qtrigger.firmware.rtl_check import _snap
    from qtrigger.firmware.rtl_stage import rtl_stage

    x, _ = _rows(300, seed=5)
    network = extract_any_network(scrambled)
    staged = rtl_stage(network, x, HLSConfig(), tmp_path / "stage", synthesize=False, n_ties=300, n_overrange=300,
                       nproc=1)
    assert staged.latency.mismatches_vs_model == {"real": 0, "ties": 0, "overrange": 0} and staged.latency.ii == 1
    assert staged.to_json()["rounding"].startswith("the trained quantizers' own (HGQ2")
    raw = raw_input_type(network)
    comb = comb_trace(*trace_model(scrambled, HWConfig(*HWCONFIG), dict(SOLVER_OPTIONS), inputs_kif=_kif(raw)))
    rows = _snap(np.concatenate([x, hgq_stress_rows(network, x, INPUT_TYPE)]), raw)
    interpreted = np.asarray(comb.predict(rows, n_threads=1), np.float64).reshape(len(rows), -1)
    assert int(np.any(interpreted != network.forward(rows), axis=1).sum()) == 0


def test_training_recipe_keys_dump_only_when_set():
    """``training.keep_epoch`` / ``lr_schedule``: a config without them resolves to the same bytes as before."""
    assert set(TrainingConfig().model_dump(mode="json")) & {"keep_epoch", "lr_schedule"} == set()
    dumped = TrainingConfig(keep_epoch="last", lr_schedule="cosine").model_dump(mode="json")
    assert (dumped["keep_epoch"], dumped["lr_schedule"]) == ("last", "cosine")
    with pytest.raises(ValueError):
        TrainingConfig(keep_epoch="median")


def test_hgq_defaults_to_its_own_recipe_and_dumps_it(default_sample, tmp_path):
    """``quantization.method: hgq`` without recipe keys: last epoch, cosine decay (chosen on validation AUC); set
    keys win; its resolved config names both keys and reads back to the same recipe; QKeras keeps best / plateau
    and its bytes."""
    from conftest import small_config_dict

    from qtrigger.config import config_to_dict, validate_config

    def recipe(quantization, **training):
        raw = small_config_dict(default_sample, tmp_path, quantization=quantization, pruning={"enabled": False})
        raw["training"].update(training)
        config = validate_config(raw)
        dumped = config_to_dict(config)
        assert config_to_dict(validate_config(dumped)) == dumped
        return (config.training.keep_epoch, config.training.lr_schedule), \
            {k: dumped["training"].get(k) for k in ("keep_epoch", "lr_schedule")}

    hgq = {"method": "hgq"}
    assert recipe(hgq) == (("last", "cosine"), {"keep_epoch": "last", "lr_schedule": "cosine"})
    assert recipe(hgq, keep_epoch="best") == (("best", "cosine"), {"keep_epoch": "best", "lr_schedule": "cosine"})
    assert recipe({}) == (("best", "plateau"), {"keep_epoch": None, "lr_schedule": None})
    assert recipe({}, lr_schedule="cosine") == (("best", "cosine"), {"keep_epoch": None, "lr_schedule": "cosine"})


def test_training_recipe_epoch_and_cosine_rate():
    from qtrigger.models.recipe import cosine_rate, kept_epoch

    best, last = TrainingConfig(epochs=4), TrainingConfig(epochs=4, keep_epoch="last", learning_rate=0.002)
    assert kept_epoch(best, [0.5, 0.3, 0.4, 0.35]) == 1 and kept_epoch(best, [0.5, 0.3, 0.4, 0.35], 2) == 3
    assert kept_epoch(last, [0.5, 0.3, 0.4, 0.35]) == 3 and kept_epoch(last, []) == 0
    assert [cosine_rate(last, e) for e in (0, 2)] == [0.002, pytest.approx(0.001)] and cosine_rate(last, 3) < 0.0003


def test_qat_init_float_twin_copies_into_hgq_layers():
    """``training.qat_init: float_twin`` with HGQ2: the twin's kernels and biases, the learned widths untouched."""
    if not _hgq_installed():
        pytest.skip("hgq2 not installed")
    from qtrigger.models.build import copy_dense_weights

    quant = QuantizationConfig(**HGQ_CFG)
    model = build_model(5, 1, ModelConfig(hidden=[4]), quant, INPUT_TYPE, True, 1)
    twin = build_model(5, 1, ModelConfig(hidden=[4]), quant, None, False, 2)
    widths_before = np.asarray(model.get_layer("dense_0").kq.quantizer._b)
    copy_dense_weights(twin, model)
    for name in ("dense_0", "output"):
        kernel, bias = twin.get_layer(name).get_weights()
        np.testing.assert_array_equal(np.asarray(model.get_layer(name).kernel), kernel)
        np.testing.assert_array_equal(np.asarray(model.get_layer(name).bias), bias)
    np.testing.assert_array_equal(np.asarray(model.get_layer("dense_0").kq.quantizer._b), widths_before)
