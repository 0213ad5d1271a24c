import numpy as np
import pytest

from qtrigger.config import ANGLE_LSB, SEED_FEATURES, FeaturesConfig
from qtrigger.inputs.codes import Preprocessor, to_feature_codes


def raw_jets(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.exponential(40, n) + 20, rng.uniform(-2.5, 2.5, n), rng.uniform(-np.pi, np.pi, n),
        rng.exponential(8, n), *rng.dirichlet(np.ones(5), n).T, rng.integers(1, 300, n),
    ])


def test_codes_round_half_even_and_saturate():
    features = FeaturesConfig()
    raw = np.zeros((4, 10))
    raw[:, 0] = [20.125, 20.375, 1e6, 0.0]  # pT LSB 0.25: ties go to even codes, saturation at 2^14-1
    raw[:, 1] = [ANGLE_LSB * 2.5, -ANGLE_LSB * 2.5, 100.0, -100.0]
    codes = to_feature_codes(raw, features, SEED_FEATURES)
    assert codes[:, 0].tolist() == [80, 82, 2**14 - 1, 0]
    assert codes[:2, 1].tolist() == [2, -2] and codes[2:, 1].tolist() == [2047, -2048]
    assert codes[:, 9].max() <= 255


def test_inputs_on_the_input_quantizer_grid():
    features = FeaturesConfig()
    codes = to_feature_codes(raw_jets(), features, SEED_FEATURES)
    pre = Preprocessor.fit(codes, features, SEED_FEATURES)
    x = pre.transform(codes)
    t = pre.input_type
    assert t.rounding == "RND_CONV" and t.saturation == "SAT"
    assert np.array_equal(t.quantize(x), x)  # already on grid and in range: quantizer is the identity
    extreme = np.array([pre.code_max, pre.code_min], dtype=np.int64)
    assert np.array_equal(t.quantize(pre.transform(extreme)), pre.transform(extreme))
    assert np.all(np.abs(np.std(x, axis=0)) < 2.0) and np.all(np.std(x, axis=0) > 0.2)


@pytest.mark.slow  # imports TensorFlow/QKeras
def test_qkeras_input_quantizer_is_identity_on_inputs():
    from qkeras import quantized_bits

    features = FeaturesConfig()
    codes = to_feature_codes(raw_jets(500), features, SEED_FEATURES)
    pre = Preprocessor.fit(codes, features, SEED_FEATURES)
    x = pre.transform(codes).astype(np.float32)
    t = pre.input_type
    q = quantized_bits(t.width, t.integer - 1, alpha=1)
    assert np.array_equal(np.asarray(q(x)), x)


def test_configured_shifts_and_save_load(tmp_path):
    features = FeaturesConfig(shifts={"Jet_pt": 4})
    codes = to_feature_codes(raw_jets(100), features, SEED_FEATURES)
    pre = Preprocessor.fit(codes, features, SEED_FEATURES)
    assert pre.shifts[0] == 4
    pre.save(tmp_path / "p.json")
    assert Preprocessor.load(tmp_path / "p.json") == pre
