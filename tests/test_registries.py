"""A new input level and a new model form plug in from outside the package: registered here, with no edit
under qtrigger/, they run through training, the exact integer reference and C-simulation."""

import numpy as np
import pytest

from conftest import small_config_dict
from qtrigger.config import validate_config
from qtrigger.errors import QTriggerError
from qtrigger.levels import register_level
from qtrigger.levels.base import LEVELS
from qtrigger.levels.jet import JetLevel
from qtrigger.models.build import MODEL_FORMS, register_form


class ReversedFeaturesLevel(JetLevel):
    """A toy level: one row per jet, its summary features in reverse order."""

    name = "toy_reversed"

    def fit_inputs(self, config, table, source, train):
        inputs, preprocessor = super().fit_inputs(config, table, source, train)
        return inputs[:, ::-1].copy(), preprocessor

    def inputs_of(self, config, table, preprocessor):
        table, inputs, saturated = super().inputs_of(config, table, preprocessor)
        return table, inputs[:, ::-1].copy(), saturated


def build_linear(n_inputs, n_out, model_cfg, quant_cfg, input_type, quantized=True, seed=1):
    """A toy form: the input quantizer and one output QDense (a quantized linear classifier)."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits

    inputs = keras.Input((n_inputs,), name="inputs")
    x = inputs
    init = keras.initializers.GlorotUniform(seed=seed)
    if not quantized:
        return keras.Model(inputs, keras.layers.Dense(n_out, kernel_initializer=init, name="output")(x))
    x = QActivation(quantized_bits(input_type.width, input_type.integer - 1, alpha=1), name="input_q")(x)
    q = quant_cfg.layer(0)
    outputs = QDense(n_out, kernel_quantizer=quantized_bits(q.weight_bits, q.weight_integer, alpha=1),
                     bias_quantizer=quantized_bits(q.bias_bits, q.bias_integer, alpha=1), kernel_initializer=init,
                     name="output")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture
def toy_registered():
    register_level(ReversedFeaturesLevel())
    register_form("toy_linear", build_linear)
    yield
    LEVELS.pop("toy_reversed", None)
    MODEL_FORMS.pop("toy_linear", None)


def test_unregistered_names_are_one_line_errors(tmp_path, default_sample):
    raw = small_config_dict(default_sample, tmp_path, features={"level": "nowhere"})
    with pytest.raises(QTriggerError, match=r"features\.level.*'nowhere' is not a registered input level"):
        validate_config(raw)
    raw = small_config_dict(default_sample, tmp_path, model={"form": "nothing"})
    with pytest.raises(QTriggerError, match=r"model\.form.*'nothing' is not a registered model form"):
        validate_config(raw)


@pytest.mark.slow
def test_toy_level_and_form_run_end_to_end(tmp_path, default_sample, toy_registered):
    from qtrigger.runs.finished import FinishedRun
    from qtrigger.runs.pipeline import run

    raw = small_config_dict(default_sample, tmp_path, features={"level": "toy_reversed"}, model={"form": "toy_linear"},
                            trigger={"enabled": False})
    raw["data"]["max_events"] = 800
    result = run(validate_config(raw), progress=False)
    assert [layer["name"] for layer in result.model.layers] == ["output"]  # the toy form's one Dense
    assert result.csim["mismatched_jets"] == 0 and result.csim["stress"]["mismatched_jets"] == 0
    assert result.csim["jets"] == result.data.n_jets["test"] > 100
    finished = FinishedRun.load(result.directory)
    x = finished.test_jets()["inputs"]
    level = ReversedFeaturesLevel()
    prepared = level.rows(finished.config)
    assert np.array_equal(x, prepared.inputs[prepared.split.test])  # the reversed rows were the ones tested
    assert np.array_equal(x[:, ::-1], JetLevel().rows(finished.config).inputs[prepared.split.test])
