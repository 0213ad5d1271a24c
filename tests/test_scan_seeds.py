"""Searches on several training seeds: one trial per (point, seed), points ranked by their worst seed, resumable."""

import contextlib

import pandas as pd
import pytest
import yaml
from test_scan import no_cluster, write_search

from qtrigger import scan as scanmod
from qtrigger.errors import QTriggerError
from qtrigger.scan import load_scan_config, plan_trials, run_scan, scan_directory
from qtrigger.scan.seeds import point_id

SEEDS = [1, 2, 3]


def seeded_search(tmp_path, default_sample, sampler="random", trials=2, budgets=None, **extra):
    path = write_search(tmp_path, default_sample, sampler=sampler, trials=trials, training_seeds=SEEDS, **extra)
    if budgets:
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**data, "budgets": budgets}, sort_keys=False))
    return load_scan_config(path)


def fake(scan, trial, qat, flt, lut, status="ok"):
    """A finished trial's result file with the given AUCs and yosys LUTs."""
    trial_dir = scan_directory(scan) / "trials" / trial.hash
    trial_dir.mkdir(parents=True, exist_ok=True)
    scanmod.write_result(trial_dir, {"hash": trial.hash, "index": trial.index, "status": status, "axes": trial.axes,
                                     "attempts": 1, "metrics": {} if status != "ok" else {
                                         "qat_auc": qat, "float_auc": flt, "signal_efficiency": qat / 2,
                                         "rtl_lut": lut, "rtl_mismatches": 0, "nonzero_parameters": 10}})


def by_point(trials):
    points: dict = {}
    for trial in trials:
        points.setdefault(point_id(trial.point), {})[trial.axes["training.seed"]] = trial
    return list(points.values())


def test_each_point_is_one_trial_per_seed_and_the_default_is_unchanged(tmp_path, default_sample):
    scan = seeded_search(tmp_path, default_sample, trials=3, seed=5)
    trials = plan_trials(scan)
    assert len(trials) == 9 == len({t.hash for t in trials})
    assert [t.axes["training.seed"] for t in trials] == SEEDS * 3
    assert all(t.config["training"]["seed"] == t.axes["training.seed"] for t in trials)
    assert [t.hash for t in trials] == [t.hash for t in plan_trials(scan)]  # seeded
    single = plan_trials(scan.model_copy(update={"search": scan.search.model_copy(update={"training_seeds": None})}))
    assert len(single) == 3 and all("training.seed" not in t.axes for t in single)
    base_seed = single[0].config["training"]["seed"]
    # the base seed's trial of a point is the very trial a single-seed search runs (same hash)
    assert [t.hash for t in trials if t.axes["training.seed"] == base_seed] == [t.hash for t in single]


def test_halving_trains_only_the_survivors_on_every_seed(tmp_path, default_sample):
    from qtrigger.scan.runner import next_rung

    scan = seeded_search(tmp_path, default_sample, sampler="halving", trials=6)
    rung0 = plan_trials(scan)
    assert len(rung0) == 6 and all("training.seed" not in t.axes for t in rung0)
    for trial, auc in zip(rung0, [0.70, 0.80, 0.75, 0.85, 0.60, 0.65]):
        fake(scan, trial, auc, auc, None)
    rung1 = next_rung(scan, 1, rung0, scan_directory(scan), len(rung0))
    assert [(t.point, t.axes["training.seed"]) for t in rung1] == [
        (p, s) for p in (rung0[3].point, rung0[1].point) for s in SEEDS]
    assert all(t.final for t in rung1)


def test_points_are_ranked_by_their_worst_seed(tmp_path, default_sample, monkeypatch):
    """A's seed 2 is bad: A is ranked at that AUC and its largest LUT count, and B (worse best, better worst) wins."""
    scan = seeded_search(tmp_path, default_sample, budgets={"lut": 2000, "qat_minus_float": -0.005})
    a, b = by_point(plan_trials(scan))
    for seed, (qat, flt, lut) in {1: (0.80, 0.79, 900), 2: (0.70, 0.76, 1950), 3: (0.79, 0.78, 950)}.items():
        fake(scan, a[seed], qat, flt, lut)
    for seed, (qat, flt, lut) in {1: (0.76, 0.762, 1500), 2: (0.75, 0.752, 1400), 3: (0.755, 0.757, 1600)}.items():
        fake(scan, b[seed], qat, flt, lut)
    monkeypatch.setattr(scanmod.runner, "_client", no_cluster)
    result = run_scan(scan, workers=1, resume=True, progress=False)
    points = result.points.set_index("hash")
    id_a, id_b = point_id(a[1].point), point_id(b[1].point)
    assert points.loc[id_a, "qat_auc"] == pytest.approx(0.70) and points.loc[id_a, "worst_seed"] == 2
    assert points.loc[id_a, "qat_minus_float"] == pytest.approx(-0.06) and points.loc[id_a, "cost_lut"] == 1950
    assert points.loc[id_b, "qat_auc"] == pytest.approx(0.75) and points.loc[id_b, "cost_lut"] == 1600
    assert points.loc[id_b, "qat_minus_float"] == pytest.approx(-0.002)
    assert result.pareto["lut"] == [id_b]  # A's best seed (0.80) does not put it on the front
    assert bool(points.loc[id_b, "fits_budgets"]) and not bool(points.loc[id_a, "fits_budgets"])  # gap -0.06
    assert pd.read_parquet(result.directory / "points.parquet")["hash"].tolist() == result.points["hash"].tolist()
    assert len(pd.read_parquet(result.results_path)) == 6
    report = result.report_path.read_text()
    assert "Pareto front, worst of 3 training seeds" in report and "ranked by its worst seed" in report
    assert "qat_minus_float ≥ -0.005" in report
    assert "by its worst training seed" in scanmod.summary_text(result)


def test_a_point_with_a_failed_seed_is_off_the_front(tmp_path, default_sample, monkeypatch):
    scan = seeded_search(tmp_path, default_sample)
    a, b = by_point(plan_trials(scan))
    for seed in SEEDS:
        fake(scan, a[seed], 0.80, 0.80, 500, status="failed" if seed == 3 else "ok")
        fake(scan, b[seed], 0.70, 0.70, 900)
    monkeypatch.setattr(scanmod.runner, "_client", no_cluster)
    result = run_scan(scan, workers=1, resume=True, progress=False)
    points = result.points.set_index("hash")
    assert points.loc[point_id(a[1].point), "status"] == "incomplete"
    assert points.loc[point_id(a[1].point), "seeds_ok"] == "1,2"
    assert result.pareto["lut"] == [point_id(b[1].point)]


def test_resume_runs_only_the_missing_seed_trials(tmp_path, default_sample, monkeypatch):
    """Killed after 4 of 6 (point, seed) trials: --resume submits exactly the 2 others, then finds all done."""
    scan = seeded_search(tmp_path, default_sample)
    trials = plan_trials(scan)
    for trial in trials[:4]:
        fake(scan, trial, 0.75, 0.75, 1000)
    before = {t.hash: (scan_directory(scan) / "trials" / t.hash / "result.json").read_text() for t in trials[:4]}
    submitted = []

    def execute(client, scan_, to_run, *args):
        submitted.extend(t.hash for t in to_run)
        for trial in to_run:
            fake(scan_, trial, 0.74, 0.75, 1100)

    @contextlib.contextmanager
    def client(*args, **kwargs):
        yield type("Client", (), {"nthreads": lambda self: {"w": 1}})()

    monkeypatch.setattr(scanmod.runner, "_client", client)
    monkeypatch.setattr(scanmod.runner, "_execute", execute)
    result = run_scan(scan, workers=1, resume=True, progress=False)
    assert submitted == [t.hash for t in trials[4:]]
    assert (result.ran, result.skipped, result.ok) == (2, 4, 6)
    assert {h: (scan_directory(scan) / "trials" / h / "result.json").read_text() for h in before} == before
    assert result.points["complete"].tolist() == [True, True]
    again = run_scan(scan, workers=1, resume=True, progress=False)
    assert again.ran == 0 and submitted == [t.hash for t in trials[4:]]


@pytest.mark.parametrize("seeds, space, match", [
    ([1, 1, 2], {}, "training seeds must be distinct"),
    ([1, 2], {"training.seed": [1, 2]}, "both set the training seed"),
    ([], {}, "training_seeds"),
])
def test_training_seed_errors_are_one_line(tmp_path, default_sample, seeds, space, match):
    path = write_search(tmp_path, default_sample, training_seeds=seeds)
    data = yaml.safe_load(path.read_text())
    data["search"]["space"].update(space)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(QTriggerError, match=match) as err:
        load_scan_config(path)
    assert "\n" not in str(err.value)
