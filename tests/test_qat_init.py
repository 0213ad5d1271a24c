"""training.qat_init: float_twin — QAT fine-tuning from the trained float twin (default off)."""

import numpy as np
import pytest

from conftest import small_config_dict
from qtrigger.config import validate_config
from qtrigger.errors import QTriggerError


def models(default_sample, tmp_path, hidden=(8,)):
    from qtrigger.fixedpoint import FixedType
    from qtrigger.models.build import build_model

    config = validate_config(small_config_dict(default_sample, tmp_path, model={"hidden": list(hidden)}))
    build = lambda quantized, seed: build_model(4, 1, config.model, config.quantization,  # noqa: E731
                                                FixedType(12, 4, True), quantized, seed)
    return build


def test_default_is_random_initialisation(default_sample, tmp_path):
    assert validate_config(small_config_dict(default_sample, tmp_path)).training.qat_init == "random"


def test_qat_model_starts_from_the_float_twins_weights(default_sample, tmp_path):
    from qtrigger.models.build import copy_dense_weights

    build = models(default_sample, tmp_path)
    twin, qat = build(False, 7), build(True, 1)
    rng = np.random.default_rng(0)
    twin.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in twin.get_weights()])
    assert not np.allclose(qat.get_layer("dense_0").get_weights()[0], twin.get_layer("dense_0").get_weights()[0])
    copy_dense_weights(twin, qat)
    for name in ("dense_0", "output"):
        for mine, theirs in zip(qat.get_layer(name).get_weights(), twin.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)


def test_shape_mismatch_is_one_line(default_sample, tmp_path):
    from qtrigger.models.build import copy_dense_weights

    with pytest.raises(QTriggerError, match=r"layer dense_0 has weights .* in the QAT model but") as err:
        copy_dense_weights(models(default_sample, tmp_path, hidden=(6,))(False, 1),
                           models(default_sample, tmp_path)(True, 1))
    assert "\n" not in str(err.value)


def test_unsupported_models_are_refused(default_sample, tmp_path):
    raw = small_config_dict(default_sample, tmp_path, model={"batchnorm": True}, training={"qat_init": "float_twin"})
    with pytest.raises(QTriggerError, match="qat_init float_twin supports per-jet MLPs without model.batchnorm"):
        validate_config(raw)


@pytest.mark.slow
def test_fine_tuned_run_trains_the_twin_first_and_reports_both(default_sample, tmp_path, monkeypatch):
    """A tiny run: the float model is trained first, QAT starts from it; both AUCs are reported."""
    from qtrigger.runs import pipeline as model_module  # where the pipeline calls copy_dense_weights
    from qtrigger.runs.pipeline import run

    copied = []
    original = model_module.copy_dense_weights
    monkeypatch.setattr(model_module, "copy_dense_weights",
                        lambda source, target: copied.append((source.name, target.name)) or original(source, target))
    raw = small_config_dict(default_sample, tmp_path, model={"hidden": [8]}, hls={"csim": False},
                            trigger={"enabled": False},
                            training={"epochs": 1, "float_twin": True, "qat_init": "float_twin"})
    result = run(validate_config(raw), progress=False)
    assert copied == [("qtrigger_float", "qtrigger_qat")]
    assert 0 < result.qat.auc < 1 and 0 < result.float_twin.auc < 1  # 1 epoch on a slice: any AUC
