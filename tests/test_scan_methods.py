"""QKeras and HGQ2 in one search (issue 30, part 6): per-method spaces, validation-AUC ranking, one front plot.

No end-to-end scan here (tests/test_scan.py has them): the planner, the worst-of-seeds fold, the plot's method
marks and the validation AUC are tested directly.
"""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from test_scan import write_search

from qtrigger.errors import QTriggerError
from qtrigger.levels.jet import JetLevel
from qtrigger.metrics import roc_auc
from qtrigger.scan import load_scan_config, plan_trials, summarise_metrics
from qtrigger.scan.results import mark_methods
from qtrigger.scan.seeds import worst_of_seeds

METHODS = {"qkeras": {"quantization.layers.weight_bits": [4, 6], "pruning.layers": [0.25]},
           "hgq": {"quantization.hgq.beta": [1.0e-6, 3.0e-5], "pruning.enabled": [False],
                   "training.lr_schedule": ["cosine"]}}


def method_search(tmp_path, default_sample, methods=METHODS, **extra):
    path = write_search(tmp_path, default_sample, trials=8, seed=3, methods=methods, **extra)
    data = yaml.safe_load(path.read_text())
    data["search"]["space"] = {"model.hidden": [[8], [4]]}
    data["physics"] = "val_auc"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_each_point_draws_its_method_then_that_methods_keys(tmp_path, default_sample):
    scan = load_scan_config(method_search(tmp_path, default_sample))
    trials = plan_trials(scan)
    methods = [t.axes["quantization.method"] for t in trials]
    assert len(trials) == 8 == len({t.hash for t in trials}) and set(methods) == {"qkeras", "hgq"}
    assert [t.hash for t in trials] == [t.hash for t in plan_trials(scan)]  # seeded
    for trial in trials:
        quant, training = trial.config["quantization"], trial.config["training"]
        if trial.axes["quantization.method"] == "hgq":
            assert quant["method"] == "hgq" and quant["hgq"]["beta"] in (1.0e-6, 3.0e-5)
            assert trial.config["pruning"]["enabled"] is False and training["lr_schedule"] == "cosine"
            assert "quantization.layers" not in trial.axes and "pruning.layers" not in trial.axes
        else:
            assert "method" not in quant and "hgq" not in quant  # a QKeras trial's config keeps its bytes
            assert len(trial.axes["quantization.layers"]) == len(trial.axes["model.hidden"]) + 1
            assert "quantization.hgq.beta" not in trial.axes and "lr_schedule" not in training
    assert scan.physics_column == "val_auc"


@pytest.mark.parametrize("methods, space, match", [
    ({"hgq": {"quantization.hgq.beta": [1e-5]}}, None,
     "scan search_random: trial quantization.method=hgq, .*: quantization.method: hgq learns its own sparsity"),
    ({"hgq": {"quantization.method": ["qkeras"]}}, None, "methods hgq: quantization.method is the method's name"),
    ({"hgq": {"pruning.enabled": [False]}}, {"quantization.method": ["qkeras"]}, "space quantization.method and "
                                                                                "methods both set"),
    ({"hgq": {"pruning.layers": [1.5]}}, None, r"methods hgq: space pruning.layers: sparsities must be numbers"),
    ({"hgq": {"training.threads": [1]}}, None, "search.space training.threads: not a scannable dotted config key"),
])
def test_method_space_errors_are_one_line_before_anything_runs(tmp_path, default_sample, methods, space, match):
    path = method_search(tmp_path, default_sample, methods=methods)
    if space:
        data = yaml.safe_load(path.read_text())
        data["search"]["space"].update(space)
        path.write_text(yaml.safe_dump(data))
    with pytest.raises(QTriggerError, match=match) as err:
        plan_trials(load_scan_config(path))
    assert "\n" not in str(err.value)


def test_points_of_both_methods_rank_by_their_worst_validation_auc():
    rows = []
    for point, method, beta, vals, tests, luts in (("p1", "qkeras", None, (0.76, 0.75, 0.77), (0.79, 0.70, 0.78),
                                                    (1500, 1700, 1600)),
                                                   ("p2", "hgq", 1e-5, (0.78, 0.77, 0.74), (0.78, 0.78, 0.78),
                                                    (600, 800, 700))):
        for seed, val, test, lut in zip((1, 2, 3), vals, tests, luts):
            rows.append({"hash": f"{point}s{seed}", "point": point, "final": True, "status": "ok",
                         "quantization.method": method, "quantization.hgq.beta": beta, "training.seed": seed,
                         "val_auc": val, "qat_auc": test, "cost_lut": lut, "cost_lut_source": "yosys"})
    points = worst_of_seeds(pd.DataFrame(rows), ["quantization.method", "quantization.hgq.beta"], "val_auc", [1, 2, 3])
    by = points.set_index("quantization.method")
    assert by.loc["qkeras", "val_auc"] == 0.75 and by.loc["qkeras", "worst_seed"] == 2  # not seed 2's test AUC
    assert by.loc["hgq", "val_auc"] == 0.74 and by.loc["hgq", "worst_seed"] == 3
    assert by.loc["hgq", "qat_auc"] == 0.78 and by.loc["hgq", "cost_lut"] == 800
    assert np.isnan(by.loc["qkeras", "quantization.hgq.beta"])


def test_the_front_plot_marks_each_method():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = pd.DataFrame({"quantization.method": ["qkeras", "hgq", "hgq", None], "cost_lut": [1500, 600, 700, 900],
                         "val_auc": [0.77, 0.78, 0.76, 0.75]})
    fig, ax = plt.subplots()
    assert mark_methods(ax, data, "cost_lut", "val_auc") == ["hgq", "qkeras"]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["HGQ2 (learned widths)", "QKeras"]
    assert [len(c.get_offsets()) for c in ax.collections] == [2, 1]
    assert mark_methods(ax, data.drop(columns="quantization.method"), "cost_lut", "val_auc") == []
    plt.close(fig)


def test_validation_auc_is_the_exact_networks_on_the_validation_rows():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(400, 3))
    labels = (inputs[:, 0] + rng.normal(scale=1.0, size=400) > 0).astype(np.int64)
    val = np.zeros(400, bool)
    val[100:250] = True
    prepared = SimpleNamespace(split=SimpleNamespace(val=val), inputs=inputs, labels=labels)
    network = SimpleNamespace(forward_codes=lambda x: np.round(x[:, :1] * 8), output_type=SimpleNamespace(lsb=0.125))
    config = SimpleNamespace(labels=SimpleNamespace(mode="binary", signal_mask=lambda y: y == 1))
    auc = JetLevel().validation_auc(config, prepared, network)
    assert auc == roc_auc(labels[val] == 1, np.round(inputs[val, 0] * 8) / 8)
    assert 0.6 < auc < 0.95 and auc != roc_auc(labels[~val] == 1, inputs[~val, 0])
    metrics = json.loads((REPO / "tests" / "data" / "v0_1" / "runs" / "v01_run" / "metrics.json").read_text())
    assert summarise_metrics(metrics)["val_auc"] is None  # a run written before validation AUCs
    metrics["qat"]["val_auc"] = auc
    assert summarise_metrics(metrics)["val_auc"] == auc
