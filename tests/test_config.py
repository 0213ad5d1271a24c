import pytest
import yaml

from conftest import REPO
from qtrigger.config import load_config
from qtrigger.errors import QTriggerError


def write(tmp_path, raw):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def base(real_file):
    return {"data": {"samples": [{"name": "real", "files": [str(real_file)]}]}}


def test_default_config_validates():
    config = load_config(REPO / "configs" / "l1_bjet_ultralight.yaml", check_files=False)
    assert config.name == "l1_bjet_ultralight"
    assert config.model.hidden == [32, 16]
    assert max(config.quantization.weight_bits, config.quantization.activation_bits) <= 6


def test_unknown_key_is_one_line(tmp_path, real_nanoaod):
    raw = base(real_nanoaod) | {"training": {"epochz": 3}}
    with pytest.raises(QTriggerError) as err:
        load_config(write(tmp_path, raw))
    assert "key training.epochz: unknown key" in str(err.value)
    assert "\n" not in str(err.value)


def test_wrong_type_names_key_and_value(tmp_path, real_nanoaod):
    with pytest.raises(QTriggerError, match=r"key training.epochs: .*integer.*'abc'"):
        load_config(write(tmp_path, base(real_nanoaod)), ["training.epochs=abc"])


@pytest.mark.parametrize("bad", ["ap_fixed<16>", "ap_fixd<16,6>", "ap_fixed<0,4>"])
def test_malformed_fixed_point_rejected(tmp_path, real_nanoaod, bad):
    raw = base(real_nanoaod) | {"hls": {"default_precision": bad}}
    with pytest.raises(QTriggerError, match=r"key hls.default_precision: malformed fixed-point type"):
        load_config(write(tmp_path, raw))


def test_missing_file_named(tmp_path):
    raw = {"data": {"samples": [{"name": "x", "files": ["/nonexistent/*.root"]}]}}
    with pytest.raises(QTriggerError, match=r"key data.samples.0.files: no file matches '/nonexistent/\*.root'"):
        load_config(write(tmp_path, raw))


def test_overrides_validated_and_applied(tmp_path, real_nanoaod):
    config = load_config(write(tmp_path, base(real_nanoaod)), ["training.epochs=2", "model.hidden=[8, 4]"])
    assert config.training.epochs == 2 and config.model.hidden == [8, 4]
    with pytest.raises(QTriggerError, match="key quantization.weight_bits"):
        load_config(write(tmp_path, base(real_nanoaod)), ["quantization.weight_bits=40"])
    with pytest.raises(QTriggerError, match="expected KEY.PATH=VALUE"):
        load_config(write(tmp_path, base(real_nanoaod)), ["training.epochs"])


def test_split_must_sum_to_one(tmp_path, real_nanoaod):
    raw = base(real_nanoaod)
    raw["data"]["split"] = {"train": 0.5, "val": 0.2, "test": 0.2}
    with pytest.raises(QTriggerError, match="must sum to 1"):
        load_config(write(tmp_path, raw))


def test_multiclass_needs_score(tmp_path, real_nanoaod):
    raw = base(real_nanoaod) | {"labels": {"mode": "multiclass", "classes": {"b": [5], "c": [4], "light": [0]}}}
    with pytest.raises(QTriggerError, match="labels.score"):
        load_config(write(tmp_path, raw))


RUN_CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("scan_"))


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_shipped_run_configs_validate(path, monkeypatch):
    """Every shipped run config loads, picks a registered level and form, and passes the preflight a run does
    before any work (files, branches, Runs trees, rate-sample bins, tools)."""
    from qtrigger.levels import level_for
    from qtrigger.models.build import MODEL_FORMS
    from qtrigger.runs import preflight

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(preflight, "required_tools", lambda config: ["g++"])  # Verilator: the RTL tests' business
    raw = yaml.safe_load(path.read_text())
    unshipped = [f for s in raw["data"]["samples"] for f in s["files"] if f.startswith("data/generated/")]
    shipped = not unshipped or all(list(REPO.glob(f)) for f in unshipped)
    # a config on samples made by the commands in its header: everything but its files (tests/test_object_event.py
    # runs it on samples made the same way)
    config = load_config(path, check_files=shipped)
    assert config.name == path.stem
    assert level_for(config).name == config.features.level and config.model.form in MODEL_FORMS
    if shipped:
        samples = preflight.check_run_inputs(config)
        assert set(samples) == {s.name for s in config.data.samples}


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("scan_*.yaml")), ids=lambda p: p.name)
def test_shipped_scan_configs_validate(path, monkeypatch):
    from qtrigger.scan import load_scan_config

    monkeypatch.chdir(REPO)
    assert load_scan_config(path) is not None


def test_sample_labels_need_binary(tmp_path, real_nanoaod):
    raw = base(real_nanoaod) | {"labels": {"mode": "multiclass", "source": "sample", "classes": {"a": [5], "b": [0]},
                                           "score": {"plus": "a"}}}
    with pytest.raises(QTriggerError, match="labels.source: sample .* needs mode: binary"):
        load_config(write(tmp_path, raw))


def test_per_layer_quantization_and_sparsity_fall_back_to_globals():
    raw = {"data": {"samples": [{"name": "s", "files": ["x.root"]}]}, "model": {"hidden": [8, 4]},
           "quantization": {"weight_bits": 6, "layers": [{"weight_bits": 4}, {}, {"weight_bits": 8, "bias_bits": 8}]},
           "pruning": {"layers": [0.5, 0.75, 0.0]}}
    from qtrigger.config import validate_config

    config = validate_config(raw)
    q = config.quantization
    assert [q.layer(i).weight_bits for i in range(3)] == [4, 6, 8]
    assert [q.layer(i).bias_bits for i in range(3)] == [6, 6, 8]
    assert q.layer(1).activation_integer == 2 and q.mixed
    assert [config.pruning.sparsity(i) for i in range(3)] == [0.5, 0.75, 0.0] and config.pruning.active
    uniform = validate_config({"data": raw["data"]})
    assert not uniform.quantization.mixed and uniform.quantization.layer(1).weight_bits == 6
    assert uniform.pruning.sparsity(2) == 0.5


@pytest.mark.parametrize("section, match", [
    ({"quantization": {"layers": [{"weight_bits": 4}]}}, r"key quantization.layers: 1 entries, expected 3 .*model.hidden \[8, 4\]"),
    ({"pruning": {"layers": [0.5, 0.5]}}, r"key pruning.layers: 2 entries, expected 3"),
    ({"pruning": {"layers": [0.5, 0.5, 1.0]}}, r"key pruning.layers: every per-layer sparsity must be in \[0, 1\)"),
    ({"quantization": {"layers": [{}, {"weight_bits": 3, "weight_integer": 3}, {}]}},
     r"layers.1: weight_integer must be <= weight_bits - 1"),
    ({"quantization": {"layers": [{}, {"weight_bitz": 3}, {}]}}, r"key quantization.layers.1.weight_bitz: unknown key"),
])
def test_per_layer_errors_are_one_line(tmp_path, section, match):
    raw = {"data": {"samples": [{"name": "s", "files": ["x.root"]}]}, "model": {"hidden": [8, 4]}} | section
    with pytest.raises(QTriggerError, match=match) as err:
        load_config(write(tmp_path, raw), check_files=False)
    assert "\n" not in str(err.value)
