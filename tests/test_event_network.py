"""The event-level network (issue 18): event inputs as the seed sees them, preselection, the
event_network seed family, bad input, and one small end-to-end run (slow) that every slow test reads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from qtrigger.config import validate_config
from qtrigger.data.reader import JetTable
from qtrigger.errors import QTriggerError
from qtrigger.inputs.event import EventInputSpec, build_event_inputs, check_input_words, slot_order, wrap_dphi
from qtrigger.inputs.seed_jets import NO_CODE, JetWords
from qtrigger.trigger.seeds import Seed

REPO = Path(__file__).resolve().parent.parent
PI = math.pi
LSB = PI / 720
FEATURES = ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_chEmEF", "Jet_muEF"]


def raw_config(**changes) -> dict:
    raw = {"name": "ev", "data": {"samples": [
        {"name": "ttbar", "files": [str(REPO / "data/default/ttbar.root")], "role": "signal"},
        {"name": "qcd", "files": [str(REPO / "data/default/qcd.root")], "role": "background"}]},
        "features": {"level": "event", "event_jets": 3, "names": list(FEATURES)},
        "labels": {"mode": "binary", "source": "sample"},
        "training": {"event_weights": "xsec"},
        "trigger": {"families": ["event_network", "jets", "ht"], "ht_jet_pt": 20.0,
                    "preselection": {"ht_gev": 100, "min_jets": 2, "jet_pt_gev": 20}},
        "hls": {"jets_per_event": 1}}
    return apply_changes(raw, changes)


def apply_changes(raw: dict, changes: dict) -> dict:
    """Set ``a__b__c=value`` keys in a nested config dict (in place)."""
    for dotted, value in changes.items():
        node = raw
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return raw


def table_of(events: list[list[tuple]], names=FEATURES) -> JetTable:
    """A JetTable from per-event lists of (pt, eta, phi, mass, chEmEF, muEF) jets in file order."""
    rows = [(e, j, jet) for e, jets in enumerate(events) for j, jet in enumerate(jets)]
    features = np.array([jet for _, _, jet in rows], dtype=np.float32).reshape(len(rows), len(names))
    n = len(events)
    table = JetTable(list(names), features, np.zeros(len(rows), np.int64),
                     np.array([e for e, _, _ in rows], np.int64), np.array([j for _, j, _ in rows], np.int32),
                     np.zeros(n, np.int16), np.ones(n), np.zeros(n, np.int32), np.arange(n, dtype=np.int64),
                     ["f.root"], ["s"])
    table.extra = {"pt": features[:, 0].copy(), "eta": features[:, 1].copy()}
    return table


@pytest.fixture(scope="module")
def spec() -> EventInputSpec:
    return EventInputSpec.from_config(validate_config(raw_config()))


# --------------------------------------------------------------------------- input builder (fast)


def test_dphi_wraps_at_plus_minus_720_codes():
    d = np.array([0, 719, 720, 721, 1439, -719, -720, -721, -1439])
    assert wrap_dphi(d).tolist() == [0, 719, -720, -719, -1, -719, -720, 719, 1]


def test_slots_sorted_by_pt_code_ties_keep_the_earlier_jet():
    words = JetWords()
    # event 0: jets of 30.0, 80.0, 80.1 and 80.2 GeV: 80.1 and 80.2 share the code floor(x/0.25) = 320
    pt = np.array([30.0, 80.2, 80.1, 80.0])
    codes = words.pt_code(pt)
    assert codes[1] == codes[2] == codes[3] == 320
    order = slot_order(codes, np.zeros(4, np.int64))
    assert order.tolist() == [1, 2, 3, 0]


def test_builder_codes_words_and_missing_jets(spec):
    jets_event0 = [(30.0, 0.5, 3.0, 5.0, 0.1, 0.0), (80.2, -1.0, -3.0, 10.0, 0.0, 0.6), (80.1, 2.0, 0.0, 7.0, 0.0, 0.0)]
    table = table_of([jets_event0, [(25.0, 0.0, 1.0, 4.0, 0.0, 0.0)], [(50.0, 0.1, 0.1, 1.0, 0.9, 0.0)]])
    table = table.subset(np.array([True, True, True, True, True]))
    table.event_sample = np.zeros(4, np.int16)  # a fourth event without jets
    table.event_weight, table.event_file, table.event_entry = np.ones(4), np.zeros(4, np.int32), np.arange(4)
    built = build_event_inputs(table, spec)
    names = built.names
    row = dict(zip(names, built.codes[0].tolist()))
    # slot 0 = 80.2 GeV (earlier of the tied pair), slot 1 = 80.1, slot 2 = 30.0
    assert (row["j0_pt"], row["j1_pt"], row["j2_pt"]) == (320, 320, 120)
    assert row["j0_eta"] == round(-1.0 / LSB) and row["j1_eta"] == round(2.0 / LSB)
    assert row["j0_dphi"] == 0
    phi0 = round(-3.0 / LSB)
    assert phi0 == -688 and row["j1_dphi"] == 0 - phi0 == 688  # < 720: no wrap
    assert row["j2_dphi"] == 688 - phi0 - 1440 == -64  # 6 rad apart: 1376 >= 720 wraps to -64 codes
    assert row["ht"] == 320 + 320 + 120 and row["n_jets"] == 3
    assert row["j0_mass"] == 40 and row["j0_muEF"] == round(0.6 * 256)
    # one jet: slots 1..2 are all-zero words; no jet at all: every input 0
    one = dict(zip(names, built.codes[1].tolist()))
    assert one["j0_pt"] == 100 and all(one[n] == 0 for n in names if n.startswith(("j1_", "j2_")))
    assert one["ht"] == 100 and one["n_jets"] == 1
    assert built.codes[3].tolist() == [0] * len(names)
    assert built.lepton_like.tolist() == [True, False, True, False]


def test_dphi_wraps_in_the_builder(spec):
    # phi_0 = -3.0 rad, phi_1 = +3.0 rad: raw difference 1376 codes >= 720 -> 1376 - 1440 = -64; and back
    table = table_of([[(90.0, 0.0, -3.0, 1.0, 0.0, 0.0), (60.0, 0.0, 3.0, 1.0, 0.0, 0.0)]])
    built = build_event_inputs(table, spec)
    row = dict(zip(built.names, built.codes[0].tolist()))
    assert row["j1_dphi"] == round(3.0 / LSB) - round(-3.0 / LSB) - 1440 == -64
    table = table_of([[(90.0, 0.0, 3.0, 1.0, 0.0, 0.0), (60.0, 0.0, -3.0, 1.0, 0.0, 0.0)]])
    row = dict(zip(built.names, build_event_inputs(table, spec).codes[0].tolist()))
    assert row["j1_dphi"] == -1376 + 1440 == 64


def test_inputs_lie_on_the_input_quantizer_grid(spec):
    from qtrigger.inputs.codes import Preprocessor

    rng = np.random.default_rng(3)
    events = [[(float(rng.uniform(20, 400)), float(rng.uniform(-2.4, 2.4)), float(rng.uniform(-PI, PI)),
                float(rng.uniform(0, 40)), float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
               for _ in range(rng.integers(0, 8))] for _ in range(300)]
    built = build_event_inputs(table_of(events), spec)
    pre = Preprocessor.fit(built.codes, spec.features_config(), spec.names)
    x = pre.transform(built.codes)
    t = pre.input_type
    frac = t.width - t.integer
    scaled = x * 2.0**frac
    assert np.array_equal(scaled, np.rint(scaled))  # exactly on the grid
    assert x.max() < 2.0 ** (t.integer - 1) and x.min() >= -(2.0 ** (t.integer - 1))  # inside the type, no clipping
    assert np.array_equal(x.astype(np.float32).astype(np.float64), x)  # exact in float32 (what QKeras sees)


def test_word_too_narrow_is_refused_in_one_line():
    raw = raw_config(features__formats={"Jet_eta": {"lsb": LSB, "bits": 6, "signed": True}})
    spec = EventInputSpec.from_config(validate_config(raw))
    built = build_event_inputs(table_of([[(50.0, 1.5, 0.0, 1.0, 0.0, 0.0)]] * 20), spec)
    with pytest.raises(QTriggerError) as err:
        check_input_words(built, "events read")
    assert str(err.value).startswith("event input j0_eta saturates its word on 100.0 % of the events read")
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- preselection and the seed family


def _jets(pt_codes, ht=None, scores=None):
    from qtrigger.inputs.seed_jets import SeedJets

    pt = np.asarray(pt_codes, np.int64)
    valid = pt > 0
    ht = pt.sum(axis=1) if ht is None else np.asarray(ht)
    jets = SeedJets(pt, np.full(pt.shape, NO_CODE), valid, ht, 0)
    return jets if scores is None else jets.with_event_score(scores)


def test_preselection_is_an_ht_seed_and_event_network_keys():
    from qtrigger.trigger.preselection import preselection_seed

    config = validate_config(raw_config())
    words = JetWords(ht_jet_pt_gev=20.0)
    presel = preselection_seed(config, words)
    assert (presel.family, presel.n_jets, presel.jet_pt_code, presel.ht_code) == ("ht", 2, 80, 400)
    # HT 100 GeV exactly with two 50 GeV jets passes; 99.75 GeV fails; one jet of 200 GeV fails (>= 2 jets)
    jets = _jets([[200, 200, 0], [200, 199, 0], [800, 0, 0], [300, 79, 100]], scores=[5, 6, 7, 8])
    assert presel.fires(jets).tolist() == [True, False, False, True]
    seed = Seed("event_network", 2, 80, None, 400).with_tuned(6)
    assert seed.tuned == "score" and seed.tagged
    assert seed.keys(jets).tolist() == [5, NO_CODE, NO_CODE, 8]
    assert seed.fires(jets).tolist() == [False, False, False, True]
    d = seed.as_dict(words, 0.5)
    assert d["family"] == "event_network" and d["score"] == 3.0
    assert d["description"] == "event score >= 3 after preselection (HT >= 100 GeV and >= 2 jets with pT >= 20 GeV)"
    from qtrigger.trigger.working_points import seed_from_dict

    assert seed_from_dict(d) == seed


def test_event_network_seed_needs_event_scores():
    with pytest.raises(ValueError, match="event_score"):
        Seed("event_network", 0, None, 1, 0).keys(_jets([[100, 0]]))


def test_event_network_family_outer_grid_is_the_preselection():
    from qtrigger.trigger.seeds import GridSpec, outer_grid

    grid = GridSpec(preselection=(2, 80, 400))
    assert outer_grid("event_network", grid, JetWords(), 0, 8, []) == [Seed("event_network", 2, 80, None, 400)]
    assert outer_grid("event_network", GridSpec(), JetWords(), 0, 8, []) == [Seed("event_network", 0, None, None, 0)]


def test_paired_gain_on_no_lepton_subset_is_the_same_arithmetic():
    from qtrigger.trigger.efficiency import paired_gain

    a = np.array([1, 1, 0, 1, 0], bool)
    b = np.array([1, 0, 0, 0, 1], bool)
    g = paired_gain(a, b)
    assert (g.gained, g.lost, g.n) == (2, 1, 5) and g.value == pytest.approx(0.2)


# --------------------------------------------------------------------------- bad input: one line, exit 2, before training


def _error(raw) -> str:
    with pytest.raises(QTriggerError) as err:
        validate_config(raw, source="c.yaml")
    assert "\n" not in str(err.value)
    return str(err.value)


def test_config_errors_are_one_line():
    assert _error(raw_config(features__event_jets=0)) == \
        "c.yaml: key features.event_jets: Input should be greater than or equal to 1 (got 0)"
    assert "trigger.families must list event_network" in _error(raw_config(trigger__families=["jets_tagged", "ht"]))
    assert "not the per-jet families ['ht_ntag']" in _error(raw_config(trigger__families=["event_network", "ht_ntag"]))
    assert "event_network needs features.level: event" in _error(raw_config(features__level="jet"))
    assert "level event needs ['Jet_phi']" in _error(raw_config(features__names=["Jet_pt", "Jet_eta"]))


def test_preselection_keeping_no_signal_is_refused():
    from qtrigger.trigger.preselection import check_preselection

    config = validate_config(raw_config())
    labels = np.array([1, 1, 0, 0])
    with pytest.raises(QTriggerError) as err:
        check_preselection(config, labels, np.array([False, False, True, False]), "training sample")
    assert str(err.value) == ("key trigger.preselection {'ht_gev': 100.0, 'min_jets': 2, 'jet_pt_gev': 20.0}: keeps no "
                              "signal event (0 of 2 in the training sample); loosen it")
    with pytest.raises(QTriggerError, match="keeps no background event"):
        check_preselection(config, labels, np.array([True, False, False, False]), "training sample")


def test_rate_sample_without_the_needed_bins_is_refused():
    from types import SimpleNamespace

    from qtrigger.trigger.preselection import check_rate_bins, preselection_leading_jet_gev

    config = validate_config(raw_config())
    assert preselection_leading_jet_gev(config) == 20.0
    bins = (SimpleNamespace(pthat_min=30.0, pthat_max=math.inf),)
    info = SimpleNamespace(bins=bins, pthat_min=30.0, where=lambda: "rate.root")
    import qtrigger.data.samples as samples

    cut = samples.generator_cut_gev
    try:
        samples.generator_cut_gev = lambda i: 30.0
        with pytest.raises(QTriggerError) as err:
            check_rate_bins(config, info)
    finally:
        samples.generator_cut_gev = cut
    assert str(err.value).startswith("rate sample rate.root starts at pTHat 30 GeV (complete above ~45 GeV")


def test_per_jet_configs_still_validate():
    from qtrigger.config import load_config

    for name in ("l1_bjet_ultralight", "l1_ttbar_seed", "seed_ultralight", "l1_bjet_multiclass"):
        config = load_config(REPO / "configs" / f"{name}.yaml", check_files=False)
        assert config.features.level == "jet"
    event = load_config(REPO / "configs" / "l1_ttbar_event.yaml", check_files=False)
    assert event.features.level == "event" and event.trigger.families == ["event_network", "jets", "ht"]


# --------------------------------------------------------------------------- one small end-to-end run (slow)


def small_run_config(tmp_path: Path, **changes) -> dict:
    raw = raw_config()
    raw.update(name="evsmall", output_dir=str(tmp_path / "runs"))
    raw["data"]["max_events"] = 3000  # per sample; the biased QCD file is one pTHat bin (weights from its events)
    raw["features"]["event_jets"] = 6
    raw["model"] = {"hidden": [16, 8]}
    raw["training"] = {"epochs": 2, "seed": 1, "threads": 1, "event_weights": "xsec", "float_twin": False,
                       "verbose": False}
    raw["trigger"]["rate_files"] = [str(REPO / "data/rate/qcd_bins/qcd_pthat*.root")]  # seed 3: 14 bins from 10 GeV
    raw["hls"]["output_dir"] = str(tmp_path / "hls")
    raw["hls"].update(rtl="on", rtl_synthesis=False)  # the event seed's RTL: Verilator, no yosys (test_rtl_synth)
    return apply_changes(raw, changes)


@pytest.fixture(scope="module")
def event_run(tmp_path_factory):
    """One small event-level run (2 epochs, 3,000 events per sample) that the slow tests read."""
    import qtrigger

    tmp = tmp_path_factory.mktemp("event_run")
    config = validate_config(small_run_config(tmp))
    result = qtrigger.run(config, progress=False)
    metrics = json.loads((Path(result.directory) / "metrics.json").read_text())
    return Path(result.directory), metrics, tmp


@pytest.mark.slow
def test_event_run_csim_exact_on_every_test_event_and_stress(event_run):
    _, m, _ = event_run
    csim = m["csim"]
    assert csim["jets"] == m["data"]["events_by_part"]["test"] > 1000
    assert csim["mismatched_jets"] == 0 and csim["max_abs_diff_lsb"] == 0
    assert csim["stress"]["mismatched_jets"] == 0 and csim["stress"]["jets"] >= 4000
    assert m["data"]["n_jets"]["train"] == m["data"]["preselected_by_part"]["train"]


@pytest.mark.slow
def test_event_run_accept_bit_cpp_equals_python(event_run):
    _, m, _ = event_run
    d = m["trigger"]["decision_hls"]
    assert d["csim_checked"] and d["header"] == "evsmall_event_seed.h"
    signal_test, held_out = m["trigger"]["signal_test_events"], m["trigger"]["background_sample"]["test_events"]
    assert d["events"] == 20_000 + signal_test + min(held_out, 20_000)
    assert d["disagreements"] == 0 and d["accept_disagreements"] == 0 and d["score_disagreements"] == 0
    assert 0.05 * d["random_events"] < d["random_accepted"] < 0.95 * d["random_events"]  # the check can fail
    assert d["accepted"] > d["random_accepted"]


@pytest.mark.slow
def test_event_run_metrics_keys_and_definitions(event_run):
    _, m, _ = event_run
    t = m["trigger"]
    assert t["level"] == "event" and t["per_jet_note"].startswith("per-jet metrics left out")
    presel = t["preselection"]
    signal_test = t["signal_test_events"]
    for key, target in (("100", 100e3), ("30", 30e3), ("10", 10e3)):
        point = t["at_rate"][key]
        net = point["event_network"]
        assert {"rate_hz", "rate_hz_err", "n_eff_fired", "signal_efficiency", "seed"} <= set(net)
        assert set(net["gain_over_best_kinematic"]) >= {"value", "err"}
        assert net["seed"]["family"] == "event_network" and net["seed"]["tuned"] == "score"
        assert (net["seed"]["n_jets"], net["seed"]["jet_pt_code"], net["seed"]["ht_code"]) == (2, 80, 400)
        assert net["calibration"]["rate_hz"] <= target  # tuned on the calibration half
        # `network` is the best network family: here the only one
        assert point["network"]["seed"] == net["seed"] and point["signal_efficiency"] == net["signal_efficiency"]
        # efficiencies per ALL signal test events: preselection losses counted
        assert point["network"]["signal_events"] == signal_test
        assert net["signal_efficiency"] <= presel["signal_efficiency"] + 1e-12
        assert point["kinematic"]["seed"]["family"] in ("jets", "ht")  # searched without the preselection
        gain = net["gain_over_best_kinematic"]
        assert gain["value"] == pytest.approx(net["signal_efficiency"] - point["kinematic"]["signal_efficiency"])
        assert "signal_efficiency" in point["gbdt_reference"]
        assert set(point["no_lepton_jet"]["gain_over_best_kinematic"]) >= {"value", "err"}
        assert 0 < point["no_lepton_jet"]["events"] < signal_test


@pytest.mark.slow
def test_event_run_evaluate_applies_run_thresholds_with_pulls(event_run):
    from qtrigger.runs.evaluation import evaluate_trigger

    run_dir, m, tmp = event_run
    out = evaluate_trigger(run_dir, [str(REPO / "data/default/ttbar.root")],
                                    [str(REPO / "data/default/qcd.root")], output_dir=tmp / "eval")
    for key, check in out["rate_at_run_threshold"].items():
        run_point = m["trigger"]["at_rate"][key]
        assert check["run_rate_hz"] == run_point["rate_hz"]
        sigma = math.hypot(check["rate_hz_err"], check["run_rate_hz_err"])
        assert check["pull"] == pytest.approx((check["rate_hz"] - check["run_rate_hz"]) / sigma)
    assert (tmp / "eval" / "trigger.json").is_file()


@pytest.mark.slow
def test_event_accept_bit_check_catches_a_missing_dphi_wrap(event_run, monkeypatch):
    """The same check with the C++ Delta-phi wrap removed must report disagreements."""
    import qtrigger.trigger.event_decision as decision
    from qtrigger.emulate.network import extract_network
    from qtrigger.runs.finished import FinishedRun
    from qtrigger.trigger.working_points import seed_from_dict

    run_dir, m, tmp = event_run
    run = FinishedRun.load(run_dir)
    spec = EventInputSpec.from_config(run.config)
    network = extract_network(run.load_model("qat"))
    seed = seed_from_dict(m["trigger"]["at_rate"]["100"]["event_network"]["seed"])
    header = decision._header
    monkeypatch.setattr(decision, "_header", lambda *a: header(*a).replace("d -= 2 * HALF_TURN", "d = d"))
    broken = decision.check_event_seed_csim(tmp / "hls" / "evsmall", "evsmall", seed, spec, run.preprocessor,
                                            network, [], n_random=3000)
    assert broken["events"] == 3000 and broken["score_disagreements"] > 100


def _cli_error(tmp_path, monkeypatch, capsys, **changes) -> tuple[int, list[str]]:
    """Run ``qtrigger run`` in-process on a small event config; return (exit status, stderr lines)."""
    from qtrigger.cli import main

    raw = small_run_config(tmp_path, **changes)
    raw["data"]["max_events"] = 300
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_dump(raw))
    monkeypatch.setenv("QTRIGGER_NATIVE_LOGS", "1")
    capsys.readouterr()
    code = main(["run", str(path)])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def yaml_dump(raw) -> str:
    import yaml

    return yaml.safe_dump(raw)


@pytest.mark.parametrize("changes, message", [
    ({"features__event_jets": 0}, "key features.event_jets: Input should be greater than or equal to 1 (got 0)"),
    ({"trigger__preselection": {"ht_gev": 100000, "min_jets": 2, "jet_pt_gev": 20}},
     "key trigger.preselection {'ht_gev': 100000.0, 'min_jets': 2, 'jet_pt_gev': 20.0}: keeps no signal event"),
    ({"features__formats": {"Jet_eta": {"lsb": LSB, "bits": 5, "signed": True}}},
     "_eta saturates its word on"),
    ({"trigger__preselection": {"ht_gev": 0, "min_jets": 1, "jet_pt_gev": 0}, "trigger__min_jet_pt": 5.0,
      "data__selection": {"pt_min": 5.0}},
     "starts at pTHat 10 GeV (complete above ~15 GeV leading-jet pT), but trigger.preselection accepts events "
     "with a leading jet down to 5 GeV"),
])
def test_bad_event_input_is_one_line_exit_2_before_training(tmp_path, monkeypatch, capsys, changes, message):
    code, lines = _cli_error(tmp_path, monkeypatch, capsys, **changes)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("qtrigger: error: ") and message in lines[0], lines[0]
    assert not (tmp_path / "runs" / "evsmall").exists()  # nothing trained or written


@pytest.mark.slow
def test_event_run_evaluate_data_on_the_real_nanoaod(event_run):
    """``qtrigger evaluate RUN --data F`` for an event run: every event of the real CMS file, C-sim exact."""
    from qtrigger.runs.evaluation import evaluate

    real = REPO.parent / "shared" / "data" / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    if not real.is_file():
        pytest.skip("../shared/data is absent (a user's machine); CI has it")
    run_dir, _, _ = event_run
    out = evaluate(run_dir, [str(real)])
    assert out["level"] == "event" and out["n_events"] == 200 and out["csim"]["jets"] == 200
    assert out["csim"]["mismatched_jets"] == 0 and out["qat"]["auc"] is None


@pytest.mark.slow
def test_event_run_rtl_is_the_whole_seed_exact_at_ii_1(event_run):
    """metrics ``rtl`` of an event run: jet words -> accept bit in Verilator, every streamed row = Python."""
    _, m, _ = event_run
    rtl, t = m["rtl"], m["trigger"]
    assert rtl["artefact"].startswith("da4ml Verilog of the event_network seed")
    assert rtl["latency_cycles"] is not None and rtl["ii"] == 1 and rtl["mismatches_vs_model"] == 0
    n_real = t["signal_test_events"] + min(t["background_sample"]["test_events"], 20_000)
    assert rtl["rows_checked"] == 2 * n_real + 20_000
    design = rtl["design"]
    assert design["thresholds_streamed"] == [p["event_network"]["seed"]["score_code"] for p in t["at_rate"].values()]
    assert sum(design["rows"].values()) == rtl["rows_checked"]
    for name, accepted in design["accepted"].items():  # the comparator and preselection are exercised
        assert 0 < accepted < design["rows"][name], name
    assert 0 < design["accepted"]["random events at the word limits"] < 20_000


@pytest.mark.slow
def test_event_rtl_check_fails_for_a_wrong_chain(event_run, monkeypatch):
    """The RTL's streamed outputs match no read offset against a chain with a shifted preselection or
    without the Delta-phi wrap: the exactness check can fail."""
    from dataclasses import replace

    from da4ml.trace import to_pipeline

    import qtrigger.inputs.event as event_inputs
    from qtrigger.emulate.network import extract_network
    from qtrigger.firmware.latency import find_latency, run_stream
    from qtrigger.firmware.rtl import default_latency_cutoff
    from qtrigger.runs.finished import FinishedRun
    from qtrigger.trigger import event_rtl

    run_dir, m, tmp = event_run
    run = FinishedRun.load(run_dir)
    spec = EventInputSpec.from_config(run.config)
    network = extract_network(run.load_model("qat"))
    seeds = event_rtl.run_seeds(m["trigger"])
    jets, words = event_rtl.load_decision_events(run_dir / event_rtl.DECISION_EVENTS_FILE)["held-out rate events"]
    layout = event_rtl.ChainLayout(spec)
    thresholds = np.full(len(words), seeds[0].score_code * network.output_type.lsb)
    rows = layout.rows(jets, words, thresholds)
    comb = event_rtl.trace_event_chain(network, spec, run.preprocessor.shifts, seeds[0], layout)
    pipe = to_pipeline(comb, default_latency_cutoff(network, 5.0), verbose=False)
    outputs = run_stream(tmp / "hls" / "evsmall" / "rtl" / "sim_latency" / "harness", rows, pipe, extra_cycles=20)
    L = m["rtl"]["latency_cycles"]

    def matching(preselection):
        expected = event_rtl.expected_outputs(preselection, jets, words, thresholds, spec, run.preprocessor, network)
        return find_latency(outputs, expected, 19)[L]

    assert matching(seeds[0]) == len(rows)
    assert matching(replace(seeds[0], ht_code=seeds[0].ht_code + 40)) < len(rows)
    monkeypatch.setattr(event_inputs, "wrap_dphi", lambda d, half_turn=720: np.asarray(d, np.int64))
    assert matching(seeds[0]) < len(rows) - 10


def test_decision_events_round_trip_and_event_rtl_refusals(spec, tmp_path):
    from qtrigger.trigger import event_rtl
    from qtrigger.trigger.event_decision import random_event_words

    seed = Seed("event_network", 2, 80, 5, 400)
    jets, words = random_event_words(seed, spec, 50, rng_seed=3)
    path = event_rtl.save_decision_events(tmp_path / "d.npz", {"a": (jets, words)})
    (back, back_words), = event_rtl.load_decision_events(path).values()
    assert np.array_equal(back.pt, jets.pt) and np.array_equal(back.valid, jets.valid)
    assert np.array_equal(back.ht, jets.ht) and np.array_equal(back_words, words)
    with pytest.raises(QTriggerError, match="no such file"):
        event_rtl.load_decision_events(tmp_path / "missing.npz")
    layout = event_rtl.ChainLayout(spec)
    rows = layout.rows(jets, words, np.zeros(50))
    assert rows.shape == (50, layout.n_inputs) == (50, 2 * spec.n_slots + spec.n_jets * (len(FEATURES) - 1) + 1)
    bad = words.copy()
    bad[:, 0, 0] += 1  # a Jet_pt word that is not the slot's pT word
    with pytest.raises(QTriggerError, match="Jet_pt slot word differs"):
        layout.rows(jets, bad, np.zeros(50))
    with pytest.raises(QTriggerError, match="differ in their preselection"):
        event_rtl._check_seeds([seed, Seed("event_network", 3, 80, 5, 400)])
    with pytest.raises(QTriggerError, match="no event_network seed"):
        event_rtl._check_seeds([])


@pytest.mark.slow
def test_event_run_evaluated_per_bunch_crossing_at_pileup(event_run):
    """evaluate --normalisation crossing: binned QCD + zero-bias crossings at mu = 1.5 re-tune and quote the seeds
    per bunch crossing, report the mu and warn that the run was trained at mu = 0."""
    pytest.importorskip("pythia8mc")
    from qtrigger.generate import generate_library, generate_sample
    from qtrigger.runs.evaluation import evaluate_trigger

    run_dir, _, tmp = event_run
    library = tmp / "pu_library"
    generate_library(60, 5, library, chunk_size=60, workers=0, progress=False)
    kw = dict(pileup=1.5, pileup_library=library, workers=0, progress=False, candidates=False)
    binned = generate_sample("qcd", 15, 11, tmp / "pu_qcd", pthat_bins="15,40", **kw)["outputs"]
    zero_bias = generate_sample("minbias", 40, 12, tmp / "pu_zb.root", **kw)["outputs"]
    out = evaluate_trigger(run_dir, [str(REPO / "data/default/ttbar.root")], [*binned, *zero_bias],
                           normalisation="crossing", output_dir=tmp / "eval_crossing")
    assert out["method"] == "crossing" and out["rate_sample"]["mu"] == 1.5
    assert "per bunch crossing" in out["rate_sample"]["held_out"]
    assert out["pileup"]["training_mu"] == [0.0] and out["pileup"]["files"][zero_bias[0]] == 1.5
    assert out["pileup_warning"].startswith("pileup differs from training: the run was trained at mu = 0")
    assert out["lumi_cm2s"] == pytest.approx(1.5 * 11245.6 * 2748 / 78.05e-27, rel=0.01)  # the background's mu
    assert "rates at L = " in out["pileup_warning"] and "not the run's 2e+34" in out["pileup_warning"]
    assert out["rate_at_run_threshold"]
