"""qtrigger.estimate.latency and qtrigger.firmware.vendor: report reading, the analytic Latency-strategy estimate, budgets, builds."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, VIVADO_REPORTS
from qtrigger.emulate.network import DenseStage, QuantizedNetwork
from qtrigger.errors import QTriggerError
from qtrigger.estimate.latency import (
    Estimate,
    check_budget,
    classify_product,
    csd_digits,
    estimate_latency_strategy,
    per_event,
)
from qtrigger.firmware.vendor import build_project, read_reports
from qtrigger.fixedpoint import FixedType

US_PART = "xcvu9p-flga2104-2L-e"

needs_reports = pytest.mark.skipif(
    not VIVADO_REPORTS.is_dir(), reason=f"{VIVADO_REPORTS} is absent (a user's machine); CI has it"
)


# ---------------------------------------------------------------- helpers


def make_network(sizes, in_type=FixedType(16, 6), weight_type=FixedType(8, 1), act_type=FixedType(8, 3, False),
                 accum_type=FixedType(24, 12), sparsity=0.0, seed=0, weights=None) -> QuantizedNetwork:
    """An MLP as integer codes: random weights in [-1, 1), a fraction ``sparsity`` set to zero."""
    rng = np.random.default_rng(seed)
    stages = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = weights[i] if weights is not None else rng.uniform(-1.0, 1.0, size=(n_in, n_out))
        codes = weight_type.quantize_codes(w)
        codes[rng.random(codes.shape) < sparsity] = 0
        last = i == len(sizes) - 2
        stages.append(DenseStage(
            f"dense_{i}", weight_type, weight_type, codes, weight_type.quantize_codes(rng.uniform(-0.5, 0.5, n_out)),
            accum_type, None if last else f"relu_{i}", None if last else act_type,
        ))
    return QuantizedNetwork("input", "input_q", in_type, stages)


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


def project_layout(tmp_path: Path) -> Path:
    """The shared report files arranged as an hls4ml project (copies in tmp_path only)."""
    project = tmp_path / "prj"
    report_dir = project / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    (project / "project.tcl").write_text('variable project_name\nset project_name "myproject"\nset backend "vivado"\n')
    shutil.copy(VIVADO_REPORTS / "vivado_hls.app", project / "myproject_prj" / "vivado_hls.app")
    for name in ("myproject_csynth.xml", "myproject_csynth.rpt"):
        shutil.copy(VIVADO_REPORTS / name, report_dir / name)
    shutil.copy(VIVADO_REPORTS / "vivado_synth.rpt", project / "vivado_synth.rpt")
    return project


# ---------------------------------------------------------------- report reading

EXPECTED_HLS = {
    "latency_cycles_best": 10, "latency_cycles_worst": 10, "latency_ns": 50.0, "ii": 8,
    "lut": 2532, "ff": 7969, "dsp": 73, "bram": 0, "clock_ns_estimated": 4.049, "clock_ns_target": 5.0,
    "verification": "hls-report",
}
EXPECTED_SYNTH = {"lut": 1526, "ff": 2428, "dsp": 66, "bram": 0, "verification": "synthesis-report"}


@needs_reports
def test_read_reports_plain_directory_exact_values():
    reports = read_reports(VIVADO_REPORTS)
    hls, syn = reports["hls_report"], reports["synthesis_report"]
    assert {k: hls[k] for k in EXPECTED_HLS} == EXPECTED_HLS
    assert {k: syn[k] for k in EXPECTED_SYNTH} == EXPECTED_SYNTH
    assert hls["available"] == {"lut": 53200, "ff": 106400, "dsp": 220, "bram": 280}


@needs_reports
def test_read_reports_hls4ml_project_layout_matches_plain(tmp_path):
    project = project_layout(tmp_path)
    via_hls4ml, plain = read_reports(project), read_reports(VIVADO_REPORTS)
    for key in ("hls_report", "synthesis_report"):
        assert {k: v for k, v in via_hls4ml[key].items() if k != "source"} == {
            k: v for k, v in plain[key].items() if k != "source"
        }
    assert via_hls4ml["hls_report"]["source"].endswith("myproject_prj/solution1/syn/report/myproject_csynth.xml")


@needs_reports
def test_best_and_worst_latency_are_read_from_their_own_fields(tmp_path):
    text = (VIVADO_REPORTS / "myproject_csynth.xml").read_text()
    text = text.replace("<Best-caseLatency>10<", "<Best-caseLatency>8<").replace("<Worst-caseLatency>10<", "<Worst-caseLatency>12<")
    (tmp_path / "myproject_csynth.xml").write_text(text)
    hls = read_reports(tmp_path)["hls_report"]
    assert (hls["latency_cycles_best"], hls["latency_cycles_worst"], hls["latency_ns"]) == (8, 12, 60.0)
    assert read_reports(tmp_path)["synthesis_report"] is None


@needs_reports
def test_project_without_synthesis_report_raises_one_line(tmp_path):
    project = project_layout(tmp_path)
    (project / "myproject_prj/solution1/syn/report/myproject_csynth.xml").unlink()
    with pytest.raises(QTriggerError) as err:
        read_reports(project)
    assert "myproject_prj/solution1/syn/report/myproject_csynth.xml" in one_line(err)


@needs_reports
def test_project_without_solution_raises_one_line(tmp_path):
    project = project_layout(tmp_path)
    (project / "myproject_prj" / "vivado_hls.app").unlink()
    with pytest.raises(QTriggerError) as err:
        read_reports(project)
    assert str(project) in one_line(err)


def test_missing_directory_and_missing_report_raise(tmp_path):
    with pytest.raises(QTriggerError) as err:
        read_reports(tmp_path / "nope")
    assert "nope" in one_line(err)
    with pytest.raises(QTriggerError) as err:
        read_reports(tmp_path)
    assert "no C-synthesis report" in one_line(err) and "_csynth.xml" in one_line(err)


def test_unreadable_reports_raise_one_line(tmp_path):
    (tmp_path / "top_csynth.xml").write_text("<profile><UserAssignments>")
    with pytest.raises(QTriggerError) as err:
        read_reports(tmp_path)
    assert "top_csynth.xml" in one_line(err) and "unreadable" in one_line(err)
    (tmp_path / "top_csynth.xml").write_text("<profile><UserAssignments/></profile>")
    with pytest.raises(QTriggerError) as err:
        read_reports(tmp_path)
    assert "lacks" in one_line(err)


@needs_reports
def test_unreadable_synthesis_report_raises(tmp_path):
    shutil.copy(VIVADO_REPORTS / "myproject_csynth.xml", tmp_path)
    (tmp_path / "vivado_synth.rpt").write_text("not a utilization report\n")
    with pytest.raises(QTriggerError) as err:
        read_reports(tmp_path)
    assert "vivado_synth.rpt" in one_line(err)


@needs_reports
def test_budget_on_reports_uses_synthesis_resources_and_part_capacity():
    result = check_budget(read_reports(VIVADO_REPORTS), latency_budget_ns=100.0)
    assert result["fits"] and result["checks"]["dsp"]["value"] == 66 and result["checks"]["dsp"]["budget"] == 220
    assert result["verification"] == {"latency": "hls-report", "resources": "synthesis-report"}
    tight = check_budget(read_reports(VIVADO_REPORTS), latency_budget_ns=40.0, resource_budget={"dsp": 50})
    assert not tight["fits"]
    assert tight["checks"]["latency_ns"]["margin"] == -10.0 and tight["checks"]["dsp"]["margin"] == -16


# ---------------------------------------------------------------- analytic estimate


def naf_weight(m: int) -> int:
    digits = 0
    while m:
        if m & 1:
            m -= 2 - (m & 3)
            digits += 1
        m >>= 1
    return digits


def test_csd_digits_match_naf():
    assert all(csd_digits(m) == naf_weight(m) for m in range(1, 2000))


def test_zero_and_power_of_two_products_cost_nothing():
    assert classify_product(0, 16)[0] == "zero"
    assert [classify_product(c, 16)[0] for c in (1, -1, 8, -64, 256)] == ["shift"] * 5
    assert classify_product(3, 16)[0] == "lut" and classify_product(-301, 16)[0] == "dsp"
    codes = np.array([[0, 1, -2], [4, -8, 0], [16, 0, -1]])
    stage = DenseStage("d", FixedType(8, 1), FixedType(8, 1), codes, np.zeros(3, np.int64), FixedType(20, 8), None, None)
    est = estimate_latency_strategy(QuantizedNetwork("in", None, FixedType(12, 4), [stage]), 5.0, part=US_PART)
    assert est.dsp == 0 and est.per_layer[0]["lut"]["mult"] == 0


@pytest.mark.parametrize("sizes", [[10, 8, 1], [10, 32, 16, 1], [16, 64, 32, 32, 5]])
def test_estimate_fields_for_three_model_sizes(sizes):
    est = estimate_latency_strategy(make_network(sizes), 5.0, part=US_PART)
    assert isinstance(est, Estimate) and est.verification == "estimate" and est.method == "analytic-latency-v1"
    assert est.ii == 1 and est.bram == 0 and len(est.per_layer) == len(sizes) - 1
    assert est.latency_ns == est.latency_cycles * 5.0 and est.latency_cycles >= len(sizes) - 1
    assert est.lut == sum(layer["lut_total"] for layer in est.per_layer) and est.ff > 0


def test_estimate_grows_with_model_size():
    figures = [estimate_latency_strategy(make_network(s), 5.0, part=US_PART) for s in ([10, 8, 1], [10, 32, 16, 1], [16, 64, 32, 32, 5])]
    assert [e.lut for e in figures] == sorted(e.lut for e in figures) and figures[0].lut < figures[-1].lut
    assert figures[0].ff < figures[-1].ff


def test_more_input_and_accumulator_width_costs_more_lut_and_ff():
    weights = [np.random.default_rng(3).uniform(-1, 1, (12, 16)), np.random.default_rng(4).uniform(-1, 1, (16, 4))]
    ests = [
        estimate_latency_strategy(make_network([12, 16, 4], in_type=FixedType(w, 4), accum_type=FixedType(w + 8, 10),
                                               act_type=FixedType(w, 4, False), weights=weights), 5.0, part=US_PART)
        for w in (6, 10, 14)
    ]
    assert ests[0].lut < ests[1].lut < ests[2].lut
    assert ests[0].ff <= ests[1].ff <= ests[2].ff


def test_more_sparsity_costs_less():
    ests = [estimate_latency_strategy(make_network([16, 32, 8], weight_type=FixedType(12, 1), sparsity=s), 5.0, part=US_PART)
            for s in (0.0, 0.5, 0.9)]
    for a, b in zip(ests, ests[1:]):
        assert b.lut < a.lut and b.dsp <= a.dsp and b.ff <= a.ff and b.latency_cycles <= a.latency_cycles
    assert ests[0].dsp > ests[-1].dsp


def test_more_weight_bits_cost_more():
    weights = [np.random.default_rng(5).uniform(-1, 1, (16, 24)), np.random.default_rng(6).uniform(-1, 1, (24, 4))]

    def est(bits):
        return estimate_latency_strategy(make_network([16, 24, 4], weight_type=FixedType(bits, 1), weights=weights), 5.0, part=US_PART)

    narrow = [est(b) for b in (3, 5, 7)]  # all below the DSP threshold: LUT grows
    assert all(e.dsp == 0 for e in narrow) and narrow[0].lut < narrow[1].lut < narrow[2].lut
    wide = [est(b) for b in (10, 12, 16)]  # DSP-mapped products appear and grow
    assert 0 < wide[0].dsp <= wide[1].dsp <= wide[2].dsp


def test_reuse_factor_trades_dsp_for_latency():
    net = make_network([16, 32, 8], weight_type=FixedType(16, 1))
    rf1, rf4 = (estimate_latency_strategy(net, 5.0, reuse_factor=rf, part=US_PART) for rf in (1, 4))
    assert rf4.ii == 4 and [layer["dsp"] for layer in rf4.per_layer] == [-(-layer["dsp"] // 4) for layer in rf1.per_layer]
    assert rf4.dsp < rf1.dsp and rf4.latency_cycles == rf1.latency_cycles + 2 * 3
    assert rf4.per_layer[0]["lut"]["mux"] > 0 and rf1.per_layer[0]["lut"]["mux"] == 0


def test_slower_family_and_faster_clock_mean_more_cycles():
    net = make_network([16, 64, 32, 1], weight_type=FixedType(16, 1))
    fast = estimate_latency_strategy(net, 5.0, part=US_PART)
    assert estimate_latency_strategy(net, 5.0, part="xc7z020clg400-1").latency_cycles >= fast.latency_cycles
    assert estimate_latency_strategy(net, 2.5, part=US_PART).latency_cycles > fast.latency_cycles


@pytest.mark.parametrize("kwargs", [{"clock_period_ns": 0}, {"clock_period_ns": 5.0, "reuse_factor": 0},
                                    {"clock_period_ns": 5.0, "part": "EP4SGX230"}])
def test_estimate_rejects_bad_arguments(kwargs):
    with pytest.raises(QTriggerError) as err:
        estimate_latency_strategy(make_network([4, 2]), **kwargs)
    one_line(err)


def tiny_set_network(cap=4):
    """φ (3 fields → 2) on ``cap`` slots, mean pooling, ρ (2 → 1), as integer codes (no TensorFlow). φ's products:
    3, 5, 7, 11 shift-and-add (CSD digits 2, 2, 2, 3), 1 a shift, 0 nothing."""
    from qtrigger.emulate.sets import Pooling, SetNetwork

    w = FixedType(6, 1)
    phi = DenseStage("phi_0", w, w, np.array([[3, 5], [7, 1], [0, 11]]), np.zeros(2, np.int64), FixedType(16, 8),
                     "relu", FixedType(6, 3, False, "RND_CONV", "SAT"))
    rho = DenseStage("out", w, w, np.array([[3], [-5]]), np.zeros(1, np.int64), FixedType(14, 6), None, None)
    pooling = Pooling("pool", "mean", cap, FixedType(8, 5, False), FixedType(6, 3, False))
    return SetNetwork("in", "in_q", FixedType(8, 4, True, "RND_CONV", "SAT"), [phi], pooling, [rho])


def test_set_estimate_reads_each_field_at_its_own_word():
    """The first φ layer's shift-and-add products at each field's word (6, 3, 2 bits) instead of the common 8 bits:
    (CSD digits - 1) * (w + 1) LUT per product, so per slot (1 + 1) * (8 - 6) + 1 * (8 - 3) + 2 * (8 - 2) = 21 LUT
    fewer, 84 on 4 slots; the pooling, ρ and the common-type estimate do not move."""
    network = tiny_set_network()
    words = (FixedType(6, 4, True), FixedType(3, 3, False), FixedType(2, 2, True))
    common = estimate_latency_strategy(network, 5.0, part=US_PART)
    narrow = estimate_latency_strategy(network, 5.0, part=US_PART, input_words=words)
    assert common.to_dict() == estimate_latency_strategy(network, 5.0, part=US_PART,
                                                         input_words=(network.input_type,) * 3).to_dict()
    assert (common.per_layer[0]["lut"]["mult"], narrow.per_layer[0]["lut"]["mult"]) == (45, 24)
    assert (common.per_layer[0]["input_bits"], narrow.per_layer[0]["input_bits"]) == (24, 11)
    lut = [sum(layer["lut_total"] for layer in est.per_layer) for est in (common, narrow)]
    assert lut[0] - lut[1] == 84 and narrow.lut < common.lut
    assert common.per_layer[1:] == narrow.per_layer[1:]
    with pytest.raises(QTriggerError) as err:
        estimate_latency_strategy(network, 5.0, input_words=words[:2])
    assert one_line(err).endswith(": expected 3, one per network input")


# ---------------------------------------------------------------- per event and budgets


def test_per_event_parallel_and_multiplexed():
    est = estimate_latency_strategy(make_network([10, 32, 16, 1]), 5.0, part=US_PART)
    par = per_event(est, jets_per_event=4, mode="parallel")
    assert par["instances"] == 4 and par["required_ii"] == 5 and par["meets_ii"]
    assert par["total"]["lut"] == 4 * est.lut and par["latency_cycles"] == est.latency_cycles
    mux = per_event(est, jets_per_event=4, mode="multiplexed")
    assert mux["instances"] == 1 and mux["required_ii"] == 1 and mux["meets_ii"]
    assert mux["total"]["lut"] == est.lut and mux["latency_cycles"] == est.latency_cycles + 3


def test_per_event_required_ii_follows_time_multiplexing():
    est = estimate_latency_strategy(make_network([10, 32, 16, 1]), 5.0, reuse_factor=2, part=US_PART)
    assert not per_event(est, jets_per_event=4, mode="multiplexed")["meets_ii"]
    tmux = per_event(est, jets_per_event=4, mode="multiplexed", time_multiplexing=6)
    assert tmux["event_period_ns"] == 150.0 and tmux["required_ii"] == 7 and tmux["meets_ii"]
    assert per_event(est, jets_per_event=4, mode="multiplexed")["min_instances_for_rate"] == 2
    with pytest.raises(QTriggerError):
        per_event(est, mode="serial")


def test_check_budget_on_estimate():
    est = estimate_latency_strategy(make_network([10, 32, 16, 1]), 5.0, part=US_PART)
    ok = check_budget(est, latency_budget_ns=100.0)
    assert ok["fits"] and set(ok["checks"]) == {"latency_ns", "lut", "ff", "dsp", "bram"}  # VU9P capacity known
    tight = check_budget(est, latency_budget_ns=est.latency_ns - 5.0, resource_budget={"lut": est.lut - 1})
    assert not tight["fits"] and tight["checks"]["latency_ns"]["margin"] == -5.0 and tight["checks"]["lut"]["margin"] == -1
    assert set(tight["checks"]) == {"latency_ns", "lut"}
    with pytest.raises(QTriggerError):
        check_budget(est, resource_budget={"uram": 1})


# ---------------------------------------------------------------- accuracy on reference points

# error_pct measured with seed 0 when the model was written (benchmarks/estimate_accuracy.py)
MEASURED_ERROR_PCT = {
    "shared_vivado_16x5_hls": {"latency_cycles": -70.0, "lut": 32.3, "ff": -89.0, "dsp": -61.6},
    "shared_vivado_16x5_synthesis": {"lut": 119.5, "ff": -63.8, "dsp": -57.6},
    "qkeras_paper_float_16-64-32-32-5": {"dsp": -60.8, "latency_cycles": -11.1},
    "qkeras_paper_q6_16-64-32-32-5": {"dsp": -100.0, "latency_cycles": -36.4},
}
MARGIN_PCT = 2.0


def load_benchmark():
    path = REPO / "benchmarks" / "estimate_accuracy.py"
    spec = importlib.util.spec_from_file_location("estimate_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_error_on_reference_points_does_not_grow():
    rows = {row["point"]: row["figures"] for row in load_benchmark().accuracy(seeds=[0])}
    assert set(rows) == set(MEASURED_ERROR_PCT)
    for point, figures in MEASURED_ERROR_PCT.items():
        for key, measured in figures.items():
            error = rows[point][key]["error_pct"]
            assert abs(error) <= abs(measured) + MARGIN_PCT, f"{point} {key}: error {error} % > measured {measured} %"


# ---------------------------------------------------------------- build


def fake_project(tmp_path: Path) -> Path:
    project = tmp_path / "hls"
    project.mkdir()
    (project / "build_prj.tcl").write_text("# hls4ml build script\n")
    (project / "project.tcl").write_text('set project_name "myproject"\n')
    return project


def test_build_without_vivado_hls_names_tool_and_command(tmp_path, monkeypatch):
    project = fake_project(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(QTriggerError) as err:
        build_project(project, csim=False, synth=True)
    text = one_line(err)
    assert "vivado_hls" in text and f"cd {project.resolve()} && vivado_hls -f build_prj.tcl" in text
    assert '"reset=0 csim=0 synth=1 cosim=0 validation=0 export=0 vsynth=0 fifo_opt=0"' in text


def test_build_without_vitis_names_tool_and_command(tmp_path, monkeypatch):
    project = fake_project(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(QTriggerError) as err:
        build_project(project, backend="Vitis")
    text = one_line(err)
    assert "vitis_hls" in text and "build_opt.tcl" in text and f"cd {project.resolve()}" in text


def test_build_rejects_non_projects_and_backends(tmp_path):
    with pytest.raises(QTriggerError) as err:
        build_project(tmp_path)
    assert "build_prj.tcl" in one_line(err)
    with pytest.raises(QTriggerError):
        build_project(fake_project(tmp_path), backend="Quartus")


def write_tool(bindir: Path, name: str, status: int) -> None:
    bindir.mkdir(exist_ok=True)
    tool = bindir / name
    tool.write_text(f'#!/bin/sh\necho "$@" > called_with.txt\nexit {status}\n')
    tool.chmod(0o755)


def test_build_runs_the_tool_in_the_project(tmp_path, monkeypatch):
    project = fake_project(tmp_path)
    write_tool(tmp_path / "bin", "vivado_hls", 0)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert build_project(project, csim=True, synth=True) is None
    called = (project / "called_with.txt").read_text().strip()
    assert called == "-f build_prj.tcl reset=0 csim=1 synth=1 cosim=0 validation=0 export=0 vsynth=0 fifo_opt=0"


def test_build_failure_names_the_log(tmp_path, monkeypatch):
    project = fake_project(tmp_path)
    write_tool(tmp_path / "bin", "vivado_hls", 3)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(QTriggerError) as err:
        build_project(project)
    assert "status 3" in one_line(err) and "qtrigger_build.log" in one_line(err)
