"""The trigger stage end to end on a short run: held-out quotes, metrics keys, evaluate on another background."""

import json
import math

import pytest

from tests.conftest import REPO, small_config_dict

pytestmark = pytest.mark.slow
RATE_FILES = [str(p) for p in sorted((REPO / "data" / "rate" / "qcd_bins").glob("*.root"))]


@pytest.fixture(scope="module")
def seed_run(default_sample, tmp_path_factory):
    from qtrigger.config import validate_config
    from qtrigger.runs.pipeline import run

    tmp = tmp_path_factory.mktemp("seed_run")
    raw = small_config_dict(default_sample, tmp, labels={"source": "sample"},
                            training={"event_weights": "gen_weight", "epochs": 3},
                            trigger={"rate_files": RATE_FILES, "bdt": False,
                                     "families": ["jets_tagged", "ht_tagged", "ht_ntag", "jets", "ht"]})
    raw["data"]["max_events"] = 4000
    raw["name"] = "seed"
    config = validate_config(raw)
    return config, run(config, progress=False), tmp


def test_metrics_have_the_held_out_keys(seed_run):
    config, metrics, tmp = seed_run
    t = metrics["trigger"]
    for key in ("rate_hz", "rate_hz_err", "n_eff_fired", "signal_efficiency", "signal_efficiency_band", "seed",
                "baselines", "gain_over_best_kinematic", "bias_warning", "targets", "at_rate"):
        assert key in t, key
    assert set(t["at_rate"]) == {"100", "30", "10"}
    assert t["bias_warning"] is None  # the stitched rate sample starts at pTHat 10 GeV: jets >= 20 GeV are complete
    for point in t["at_rate"].values():
        net = point["network"]
        assert net["calibration"]["rate_hz"] <= point["target_rate_hz"] < net["calibration"]["rate_below_hz"]
        assert abs(net["rate_hz"] - point["target_rate_hz"]) < 4 * net["rate_hz_err"]  # held-out vs calibration
        assert net["n_eff_fired"] > 20 and net["rate_hz_err"] > 0
        low, high = net["signal_efficiency_interval"]
        assert low <= net["signal_efficiency"] <= high
        gain = point["gain_over_best_kinematic"]
        assert gain["value"] == pytest.approx((gain["gained"] - gain["lost"]) / gain["n"])
        assert {"jets", "ht", "single_jet"} <= set(point["baselines"])
        families = point["families"]  # the best seed of each network family, quoted on held-out events
        assert set(families) == {"jets_tagged", "ht_tagged", "ht_ntag"}
        assert families["ht_ntag"]["seed"]["family"] == "ht_ntag" and families["ht_ntag"]["seed"]["n_tagged"] >= 1
        assert max(f["calibration"]["selection_efficiency"] for f in families.values()) == \
            net["calibration"]["selection_efficiency"]
        assert families[net["seed"]["family"]]["seed"] == net["seed"]
    assert t["decision_hls"]["csim_checked"] and t["decision_hls"]["disagreements"] == 0
    assert t["decision_hls"]["python_fires_disagreements"] == 0
    assert t["rate_sample"]["stitched_bins"] == 14
    saved = json.loads((tmp / "runs" / "seed" / "metrics.json").read_text())["trigger"]
    assert saved["seed"] == t["seed"]


def test_evaluate_reports_the_run_thresholds_on_another_background(seed_run, default_sample, tmp_path):
    from qtrigger.runs.evaluation import evaluate_trigger

    config, metrics, tmp = seed_run
    result = evaluate_trigger(tmp / "runs" / "seed", [default_sample["ttbar"]], [default_sample["qcd"]],
                              output_dir=tmp_path)
    checked = result["rate_at_run_threshold"]
    assert set(checked) == {"100", "30", "10"}
    assert result["rate_at_run_threshold_hz"] == checked["100"]["rate_hz"]
    assert math.isfinite(result["rate_at_run_threshold_hz_err"]) and checked["100"]["seed"]
    assert (tmp_path / "trigger.json").is_file()
