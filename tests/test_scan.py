"""Design-space scans on dask.distributed: end to end, a killed worker, --resume, validation up front."""

import argparse
import contextlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, small_config_dict
from qtrigger import scan as scanmod
from qtrigger.errors import QTriggerError
from qtrigger.scan import (
    load_scan_config,
    pareto_front,
    plan_trials,
    run_scan,
    scan_directory,
    trial_hash,
)


def write_scan(tmp_path: Path, default_sample: dict, name: str = "tiny", axes=None, csim: bool = False, **extra) -> Path:
    """A base run config on a slice of the default sample and a scan file next to it (outputs under tmp_path)."""
    # One trigger rate and no BDT reference: these scans test planning, failures and resuming, not physics.
    base = small_config_dict(default_sample, tmp_path, data={"max_events": 800}, training={"epochs": 1},
                             hls={"csim": csim}, trigger={"bdt": False, "extra_rates_hz": []})
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    scan = {"name": name, "base": "base.yaml", "overrides": ["training.batch_size=256"],
            "axes": axes or {"quantization.weight_bits": [4, 6]}, "output_dir": str(tmp_path / "scans"), **extra}
    path = tmp_path / f"scan_{name}.yaml"
    path.write_text(yaml.safe_dump(scan, sort_keys=False))
    return path


def no_cluster(*args, **kwargs):
    raise AssertionError("a cluster was started")


def attempt_lines(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "attempts.jsonl").read_text().splitlines() if line.strip()]


# --- planning and validation (no cluster) -------------------------------------------------


def test_bad_axis_key_is_one_line_error_before_anything_runs(tmp_path, default_sample, monkeypatch):
    path = write_scan(tmp_path, default_sample, axes={"quantization.weight_bitz": [4, 6]})
    monkeypatch.setattr(scanmod.runner, "_client", no_cluster)
    with pytest.raises(QTriggerError) as err:
        run_scan(load_scan_config(path), workers=2, progress=False)
    message = str(err.value)
    assert "\n" not in message and "quantization.weight_bitz" in message and "unknown key" in message
    assert not (tmp_path / "scans").exists()


def test_bad_axis_value_names_the_axis_and_value(tmp_path, default_sample):
    path = write_scan(tmp_path, default_sample, axes={"quantization.weight_bits": [4, 99], "model.hidden": [[8]]})
    with pytest.raises(QTriggerError, match=r"axis quantization\.weight_bits=99: key quantization\.weight_bits"):
        plan_trials(load_scan_config(path))


@pytest.mark.parametrize("raw, match", [
    ({"axes": {"output_dir": ["a", "b"]}}, "key axes: axis output_dir: cannot be scanned"),
    ({"axes": {"training.threads": [1, 2]}}, "key axes: axis training.threads: cannot be scanned"),
    ({"axes": {"model.hidden": []}}, "axis model.hidden: empty list"),
    ({"axes": {"model.dropout": 0.1}}, "axis model.dropout: expected a list of values or"),
    ({"sampling": "sobol"}, "key sampling"),
    ({"budget": {"lut": 1}}, "key budget: unknown key"),
    ({"overrides": ["training.epochs"]}, "key overrides: 'training.epochs': expected KEY.PATH=VALUE"),
])
def test_scan_file_errors_are_one_line(tmp_path, default_sample, raw, match):
    path = write_scan(tmp_path, default_sample)
    data = yaml.safe_load(path.read_text())
    data.update(raw)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(QTriggerError, match=match) as err:
        plan_trials(load_scan_config(path))
    assert "\n" not in str(err.value)


def test_grid_range_random_and_hash(tmp_path, default_sample):
    path = write_scan(tmp_path, default_sample, axes={
        "quantization.weight_bits": {"range": {"start": 3, "stop": 8, "step": 1}},
        "model.hidden": [[16, 8], [8]],
        "pruning.target_sparsity": {"range": {"start": 0.0, "stop": 0.5, "step": 0.25}}})
    scan = load_scan_config(path)
    assert scan.axes["quantization.weight_bits"] == [3, 4, 5, 6, 7, 8]
    assert scan.axes["pruning.target_sparsity"] == [0.0, 0.25, 0.5]
    grid = plan_trials(scan)
    assert len(grid) == 6 * 2 * 3 == len({t.hash for t in grid})
    assert grid[0].axes == {"quantization.weight_bits": 3, "model.hidden": [16, 8], "pruning.target_sparsity": 0.0}
    trial_dir = scan_directory(scan) / "trials" / grid[0].hash
    assert grid[0].config["output_dir"] == str(trial_dir)
    assert grid[0].config["hls"]["output_dir"] == str(trial_dir / "hls")
    assert grid[0].config["training"]["threads"] == 1
    # the identity ignores where a trial runs and with how many threads
    assert plan_trials(scan, threads_per_worker=4)[0].hash == grid[0].hash
    moved = scan.model_copy(update={"output_dir": str(tmp_path / "elsewhere")})
    assert [t.hash for t in plan_trials(moved)] == [t.hash for t in grid]
    changed = dict(grid[0].config, training=dict(grid[0].config["training"], seed=2))
    assert trial_hash(changed) != grid[0].hash and len(grid[0].hash) == 12

    sampled = scan.model_copy(update={"sampling": "random", "max_trials": 5, "seed": 3})
    first, again = plan_trials(sampled), plan_trials(sampled)
    assert len(first) == 5 and [t.hash for t in first] == [t.hash for t in again]
    assert {t.hash for t in first} <= {t.hash for t in grid}
    with pytest.raises(QTriggerError, match="key max_trials: the grid has 36 points"):
        plan_trials(scan.model_copy(update={"max_trials": 10}))


def test_pareto_front():
    eff = [0.5, 0.6, 0.55, 0.7, None, 0.7]
    cost = [10, 20, 30, 40, 5, 50]
    assert pareto_front(eff, cost) == [True, True, False, True, False, False]


def test_lut_source_says_which_count_and_whether_it_is_calibrated():
    from qtrigger.scan.results import measured_lut

    assert measured_lut({"rtl_lut": 900, "rtl_da4ml_lut": 1000, "lut": 2000}) == (900, "yosys")
    assert measured_lut({"rtl_lut": None, "rtl_da4ml_lut": 1000, "lut": 2000}) == (1000, "da4ml estimate")
    assert measured_lut({"lut": 2000, "lut_calibrated": False}) == (2000, "hls4ml estimate")
    assert measured_lut({"lut": 2000, "lut_calibrated": True}) == (2000, "hls4ml estimate, calibrated to yosys")
    assert measured_lut({"lut": None, "lut_calibrated": True}) == (None, None)


def test_table_from_result_files_without_estimates_falls_back_to_parameters(tmp_path, default_sample, monkeypatch):
    """--resume with every result present starts no cluster and rebuilds the table, plot and report."""
    path = write_scan(tmp_path, default_sample, axes={"quantization.weight_bits": [4, 6], "model.hidden": [[16], [8]]},
                      budgets={"lut": 1000})
    scan = load_scan_config(path)
    trials = plan_trials(scan)
    for i, trial in enumerate(trials):
        trial_dir = scan_directory(scan) / "trials" / trial.hash
        trial_dir.mkdir(parents=True)
        failed = i == 3
        scanmod.write_result(trial_dir, {
            "hash": trial.hash, "index": trial.index, "status": "failed" if failed else "ok",
            "error": "key x: boom" if failed else None, "axes": trial.axes, "attempts": 1,
            "metrics": {} if failed else {"qat_auc": 0.8 + i / 100, "signal_efficiency": [0.3, 0.5, 0.25][i],
                                          "nonzero_parameters": [100, 300, 200][i], "csim_mismatched_jets": 0}})
    with pytest.raises(QTriggerError, match="already has 4 finished trial.*--resume"):
        run_scan(scan, workers=1, progress=False)
    monkeypatch.setattr(scanmod.runner, "_client", no_cluster)
    result = run_scan(scan, workers=1, resume=True, progress=False)
    assert (result.ran, result.skipped, result.ok, result.failed) == (0, 4, 3, 1)
    assert result.cost_axes == {"lut": "nonzero_parameters", "latency": "nonzero_parameters"}
    assert result.pareto["lut"] == [trials[0].hash, trials[1].hash]
    table = pd.read_parquet(result.results_path)
    assert table["hash"].tolist() == [t.hash for t in trials]
    assert table["fits_budgets"].isna().all()  # a LUT budget but no LUT estimate: unknown, not "fits"
    report = result.report_path.read_text()
    assert "no hardware estimate in the results" in report and "`model.nonzero_parameters`" in report
    assert "key x: boom" in report and result.plot_path.stat().st_size > 0
    assert (scan_directory(scan) / "results.csv").is_file()


# --- on a dask cluster ------------------------------------------------------------------


@pytest.mark.slow
def test_ci_scan_config_end_to_end(tmp_path, monkeypatch):
    """configs/scan_ci.yaml through the CLI glue on a local 2-worker cluster, C-simulation on."""
    monkeypatch.chdir(REPO)  # the base config's sample paths are relative to the repository
    parser = argparse.ArgumentParser()
    from qtrigger.cli import scan as scan_cli

    scan_cli.add_arguments(parser)
    args = parser.parse_args(["configs/scan_ci.yaml", "--workers", "2", "--threads-per-worker", "1",
                              "--set", f"output_dir={tmp_path}", "--no-progress"])
    assert scan_cli.run_from_args(args) == 0
    scan = load_scan_config(REPO / "configs" / "scan_ci.yaml", [f"output_dir={tmp_path}"])
    trials = plan_trials(scan)
    scan_dir = tmp_path / scan.name
    table = pd.read_parquet(scan_dir / "results.parquet")
    assert len(table) == len(trials) == 2 and table["hash"].is_unique
    assert set(table["hash"]) == {t.hash for t in trials}
    assert (table["status"] == "ok").all(), table["error"].tolist()
    assert (table["csim_mismatched_jets"] == 0).all() and (table["csim_jets"] > 0).all()
    assert table["qat_auc"].between(0, 1).all() and table["signal_efficiency"].notna().all()
    assert (table["tensorflow_threads"] == 1).all()
    assert set(table["model.hidden"]) == {"[16,8]", "[32,16]"}
    assert table["pareto_lut"].any()
    assert (scan_dir / "pareto.png").stat().st_size > 10000
    assert "## Pareto front: signal efficiency vs" in (scan_dir / "report.md").read_text()
    for trial in trials:
        run_dir = scan_dir / "trials" / trial.hash / f"{scan.name}_{trial.hash}"
        assert (run_dir / "metrics.json").is_file() and (scan_dir / "trials" / trial.hash / "hls").is_dir()


@pytest.fixture(scope="module")
def killed_scan(tmp_path_factory, default_sample):
    """A 2-trial scan (one trial fails: its selection keeps no jets) whose every trial kills its
    worker on the first attempt (deterministic fault injection)."""
    tmp = tmp_path_factory.mktemp("killed")
    scan = load_scan_config(write_scan(tmp, default_sample, name="killed",
                                       axes={"data.selection.pt_min": [20.0, 5000.0]}))
    markers = tmp / "kills"
    result = run_scan(scan, workers=2, progress=False, fail_once_dir=markers)
    trials = plan_trials(scan)
    snapshot = {t.hash: attempt_lines(result.directory / "trials" / t.hash) for t in trials}
    return scan, trials, result, markers, snapshot


@pytest.mark.slow
def test_killed_worker_trial_is_retried_and_recorded_once(killed_scan):
    scan, trials, result, markers, attempts = killed_scan
    hashes = sorted(t.hash for t in trials)
    assert sorted(p.name for p in markers.iterdir()) == hashes  # each trial's first attempt killed its worker
    # a task assigned to a worker at the moment it dies is killed too, so deaths can exceed trials
    assert result.worker_deaths >= len(trials)
    assert sorted(p.parent.name for p in (result.directory / "trials").glob("*/result.json")) == hashes
    table = pd.read_parquet(result.results_path)
    assert len(table) == len(trials) and table["hash"].is_unique
    # a failing trial records its one-line error and the scan goes on
    assert table["status"].tolist() == ["ok", "failed"] and (result.ok, result.failed) == (1, 1)
    error = table["error"][1]
    assert "keeps no jets" in error and "\n" not in error and table["error"].isna()[0]
    assert "## Failed trials" in result.report_path.read_text()
    for digest, lines in attempts.items():
        assert len(lines) == 2 and lines[0]["pid"] != lines[1]["pid"]  # the second attempt ran in a new process
        # a collateral KilledWorker (task queued on the dying worker) may use up a submission unstarted
        first, second = (line["submission"] for line in lines)
        assert first == 1 and second > first
    assert (table["attempts"] == 2).all()
    for trial in trials:  # the dead attempt's staging directories were cleaned up
        assert not list((result.directory / "trials" / trial.hash).glob(".*partial*"))


@pytest.mark.slow
def test_resume_reruns_only_the_unfinished_trial(killed_scan):
    scan, trials, first, _, _ = killed_scan
    victim, kept = trials  # kept: the failed trial, whose result file exists, so --resume leaves it alone
    victim_dir, kept_dir = (first.directory / "trials" / t.hash for t in trials)
    kept_result = (kept_dir / "result.json").read_text()
    victim_started = json.loads((victim_dir / "result.json").read_text())["started"]
    (victim_dir / "result.json").unlink()  # as if the scan had been interrupted during this trial
    with pytest.raises(QTriggerError, match="already has 1 finished trial"):
        run_scan(scan, workers=1, progress=False)
    result = run_scan(scan, workers=1, resume=True, progress=False)
    assert (result.ran, result.skipped, result.ok, result.failed) == (1, 1, 1, 1)
    assert len(attempt_lines(victim_dir)) == 3 and len(attempt_lines(kept_dir)) == 2
    assert (kept_dir / "result.json").read_text() == kept_result
    assert json.loads((victim_dir / "result.json").read_text())["started"] > victim_started
    table = pd.read_parquet(result.results_path)
    assert table["hash"].tolist() == [t.hash for t in trials] and table["status"].tolist() == ["ok", "failed"]


# --- search samplers ----------------------------------------------------------------------

SPACE = {"model.hidden": [[8], [8, 4]], "quantization.layers.weight_bits": [3, 4, 5, 6],
         "quantization.layers.activation_bits": [4, 6], "pruning.layers": [0.0, 0.5, 0.75]}


def write_search(tmp_path, default_sample, sampler="random", trials=5, seed=0, **extra):
    path = write_scan(tmp_path, default_sample, name=f"search_{sampler}")
    data = yaml.safe_load(path.read_text())
    del data["axes"]
    data["overrides"].append("training.epochs=2")  # halving: rung 0 at 1 epoch, the last rung at 2
    data["search"] = {"sampler": sampler, "trials": trials, "seed": seed, "space": SPACE,
                      "halving": {"min_epochs": 1, "eta": 3}, **extra}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_search_plan_is_seeded_and_per_layer(tmp_path, default_sample):
    scan = load_scan_config(write_search(tmp_path, default_sample, trials=6, seed=7))
    first, again = plan_trials(scan), plan_trials(scan)
    assert len(first) == 6 == len({t.hash for t in first})
    assert [t.hash for t in first] == [t.hash for t in again] and [t.axes for t in first] == [t.axes for t in again]
    other = plan_trials(scan.model_copy(update={"search": scan.search.model_copy(update={"seed": 8})}))
    assert [t.hash for t in other] != [t.hash for t in first]
    for trial in first:
        n_dense = len(trial.axes["model.hidden"]) + 1
        layers, sparsity = trial.axes["quantization.layers"], trial.axes["pruning.layers"]
        assert len(layers) == len(sparsity) == n_dense and "activation_bits" not in layers[-1]
        assert trial.config["quantization"]["layers"][0]["weight_bits"] == layers[0]["weight_bits"]
        assert trial.config["pruning"]["layers"] == sparsity and trial.final and trial.rung == 0
    assert scan.physics_column == "qat_auc"


@pytest.mark.parametrize("change, match", [
    ({"axes": {"model.dropout": [0.1]}}, "give either axes .* or search"),
    ({"search": {"trials": 2, "space": {"quantization.layers.weight_bitz": [3]}}}, r"per-layer keys are quantization\.layers\.<"),
    ({"search": {"trials": 2, "space": {"pruning.layers": [1.5]}}}, r"sparsities must be numbers in \[0, 1\)"),
    ({"search": {"trials": 2, "space": {"training.threads": [1]}}}, "not a scannable dotted config key"),
    ({"search": {"trials": 2, "sampler": "bayes", "space": {"model.hidden": [[8]]}}}, "key search.sampler"),
])
def test_search_file_errors_are_one_line(tmp_path, default_sample, change, match):
    path = write_search(tmp_path, default_sample)
    data = yaml.safe_load(path.read_text())
    data.update(change)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(QTriggerError, match=match) as err:
        plan_trials(load_scan_config(path))
    assert "\n" not in str(err.value)


def test_rung_epochs_and_survivors():
    from qtrigger.scan.search import SearchConfig, rung_epochs, survivors

    halving = SearchConfig(sampler="halving", trials=9, space={"a.b": [1]}, halving={"min_epochs": 2, "eta": 3})
    assert rung_epochs(halving, 20) == [2, 6, 18, 20] and rung_epochs(halving, 2) == [2]
    assert rung_epochs(halving.model_copy(update={"sampler": "random"}), 20) == [20]
    rows = [{"status": "ok", "metrics": {"qat_auc": a}} for a in (0.7, 0.9, 0.8, 0.9)] + [{"status": "failed"}] * 2
    assert survivors(rows, 3, "qat_auc") == [1, 3] and survivors(rows[:2], 3, "qat_auc") == [1]


def fake_result(trial_dir, trial, auc, lut=None):
    trial_dir.mkdir(parents=True, exist_ok=True)
    scanmod.write_result(trial_dir, {"hash": trial.hash, "index": trial.index, "status": "ok", "axes": trial.axes,
                                     "attempts": 1, "metrics": {"qat_auc": auc, "signal_efficiency": auc / 2,
                                                                "lut": 5000 - 100 * trial.index, "rtl_lut": lut,
                                                                "nonzero_parameters": 10}})


def test_halving_promotes_the_best_and_resumes_without_running(tmp_path, default_sample, monkeypatch):
    """Every rung's results present: --resume walks the rungs (re-planned from the seed) and starts no cluster."""
    from qtrigger.scan.runner import next_rung

    scan = load_scan_config(write_search(tmp_path, default_sample, sampler="halving", trials=6))
    trials_dir = scan_directory(scan) / "trials"
    rung0 = plan_trials(scan)
    assert [t.axes["training.epochs"] for t in rung0] == [1] * 6 and not any(t.final for t in rung0)
    assert all(t.config["hls"]["rtl"] == "off" and not t.config["hls"]["csim"] for t in rung0)
    for i, trial in enumerate(rung0):
        fake_result(trials_dir / trial.hash, trial, [0.70, 0.80, 0.75, 0.85, 0.60, 0.65][i])
    rung1 = next_rung(scan, 1, rung0, scan_directory(scan), len(rung0))
    assert [t.point for t in rung1] == [rung0[3].point, rung0[1].point]  # best 6 // 3 = 2 by qat_auc
    assert all(t.final and "training.epochs" not in t.axes for t in rung1) and rung1[0].config["training"]["epochs"] == 2
    assert [t.index for t in rung1] == [6, 7]
    assert next_rung(scan, 1, rung1, scan_directory(scan), 8) == []
    fake_result(trials_dir / rung1[0].hash, rung1[0], 0.86, lut=900)
    fake_result(trials_dir / rung1[1].hash, rung1[1], 0.82)
    monkeypatch.setattr(scanmod.runner, "_client", no_cluster)
    result = run_scan(scan, workers=1, resume=True, progress=False)
    assert (result.trials, result.ran, result.ok) == (8, 0, 8)
    table = pd.read_parquet(result.results_path)
    assert table["rung"].tolist() == [0] * 6 + [1] * 2
    assert result.cost_axes["lut"] == "cost_lut"
    assert table["cost_lut_source"].tolist()[6:] == ["yosys", "hls4ml estimate"]
    assert table["cost_lut"].tolist()[6] == 900
    assert set(result.pareto["lut"]) <= {rung1[0].hash, rung1[1].hash}  # only the fully trained rung
    assert result.pareto["lut"] == [rung1[0].hash]  # 900 yosys LUT and the best AUC
    report = result.report_path.read_text()
    assert "successive halving" in report and "QAT AUC vs LUTs (yosys where synthesized" in report


class _NoWorkers:
    """Stands in for a dask client: the scan asks it only how many workers it has."""

    def nthreads(self):
        return {}


def test_halving_resume_reruns_only_a_missing_rung0_trial(tmp_path, default_sample, monkeypatch):
    """A rung-0 loser killed before its result was written: --resume runs it alone; the survivors are not redone."""
    from qtrigger.scan.runner import next_rung

    scan = load_scan_config(write_search(tmp_path, default_sample, sampler="halving", trials=3))
    trials_dir = scan_directory(scan) / "trials"
    rung0 = plan_trials(scan)
    for trial, auc in zip(rung0, [0.70, 0.80, 0.60]):
        fake_result(trials_dir / trial.hash, trial, auc)
    (survivor,) = next_rung(scan, 1, rung0, scan_directory(scan), len(rung0))
    fake_result(trials_dir / survivor.hash, survivor, 0.82, lut=900)
    kept = (trials_dir / survivor.hash / "result.json").read_text()
    (trials_dir / rung0[2].hash / "result.json").unlink()
    executed = []

    def execute(client, scan, to_run, scan_dir, threads, fail_once, progress, stats):
        executed.append([t.hash for t in to_run])
        for trial in to_run:
            fake_result(scan_dir / "trials" / trial.hash, trial, 0.60)

    monkeypatch.setattr(scanmod.runner, "_client", lambda *args: contextlib.nullcontext(_NoWorkers()))
    monkeypatch.setattr(scanmod.runner, "_execute", execute)
    result = run_scan(scan, workers=1, resume=True, progress=False)
    assert executed == [[rung0[2].hash]]
    assert (result.trials, result.ran, result.skipped, result.ok) == (4, 1, 3, 4)
    assert (trials_dir / survivor.hash / "result.json").read_text() == kept
    assert pd.read_parquet(result.results_path)["hash"].tolist() == [t.hash for t in rung0] + [survivor.hash]


@pytest.mark.slow
def test_halving_search_on_dask_synthesizes_survivors(tmp_path, default_sample):
    """2 points at 1 epoch on 2 workers, the best trained for 2 epochs with da4ml RTL + yosys (resuming a halving
    search: test_halving_resume_reruns_only_a_missing_rung0_trial)."""
    path = write_scan(tmp_path, default_sample, name="search_dask")
    data = yaml.safe_load(path.read_text())
    del data["axes"]
    data["overrides"] += ["training.epochs=2", "hls.strategy=distributed_arithmetic"]
    data["search"] = {"sampler": "halving", "trials": 2, "seed": 1, "halving": {"min_epochs": 1, "eta": 3},
                      "space": {"model.hidden": [[8]], "quantization.layers.weight_bits": [3, 4, 6],
                                "pruning.layers": [0.0, 0.5]}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    scan = load_scan_config(path)
    result = run_scan(scan, workers=2, progress=False)
    assert (result.trials, result.ran, result.ok) == (3, 3, 3)
    table = pd.read_parquet(result.results_path)
    final = table[table["rung"] == 1].iloc[0]
    best = table[table["rung"] == 0]["qat_auc"].idxmax()
    assert final["pruning.layers"] == table["pruning.layers"][best]  # the best point of rung 0 went on
    assert final["quantization.layers"] == table["quantization.layers"][best]
    assert final["cost_lut_source"] == "yosys" and final["rtl_lut"] > 0 and final["rtl_mismatches"] == 0
    assert final["rtl_ii"] == 1
    assert table[table["rung"] == 0]["rtl_lut"].isna().all()  # rung 0: no RTL, no synthesis
    assert result.pareto["lut"] == [final["hash"]]
