"""RTL figures of da4ml's Verilog: yosys cell counts, the independent latency search, the run's ``rtl`` dict.

Fast tests check parsing, bit packing, the offset search and the per-event arithmetic on
made-up data. Slow tests build a tiny network's Verilog, measure its latency in Verilator,
synthesize it with yosys and check the RTL against the trained model (ties and
over-range rows included); outside CI they skip when the ``rtl`` extra is absent.
"""

import importlib.util
import json
import os

import numpy as np
import pytest

from qtrigger.config import HLSConfig, ModelConfig, QuantizationConfig
from qtrigger.errors import QTriggerError
from qtrigger.firmware.latency import PortLayout, find_latency, pack_rows, unpack_words
from qtrigger.firmware.rtl_stage import per_event, rtl_stage
from qtrigger.firmware.synth import CAVEATS, cell_counts, parse_ltp, parse_stat_json, synthesis_script
from qtrigger.fixedpoint import FixedType

INPUT_TYPE = FixedType(10, 4, True, "RND_CONV", "SAT")


# ---------------------------------------------------------------- fast


def test_cell_counts_classify_xilinx_cells():
    counts = cell_counts({"$scopeinfo": 9, "LUT2": 10, "LUT6": 3, "FDRE": 7, "FDSE": 1, "CARRY4": 5, "CARRY8": 1,
                          "MUXF7": 2, "MUXF8": 1, "DSP48E2": 1, "RAMB36E2": 2, "INV": 4, "SRL16E": 1})
    assert counts.lut == 13 and counts.lut_by_size == {"LUT2": 10, "LUT6": 3}
    assert (counts.ff, counts.carry, counts.carry_bits) == (8, 6, 28)
    assert (counts.muxf, counts.dsp, counts.bram, counts.inv) == (3, 1, 2, 4)
    assert counts.other == {"SRL16E": 1}


def test_parse_stat_json_new_and_old_layouts():
    new = {"modules": {"\\top": {"num_cells_by_type": {"LUT3": 4, "FDRE": 2}}}, "design": {}}
    assert parse_stat_json(json.dumps(new), "top").lut == 4
    old = {"modules": {}, "design": {"num_cells_by_type": {"LUT3": 1, "CARRY4": 2}}}
    assert parse_stat_json(json.dumps(old), "top").carry == 2
    with pytest.raises(QTriggerError, match="no module top"):
        parse_stat_json(json.dumps({"modules": {"\\other": {}}}), "top")


def test_parse_ltp_both_messages_and_path_cells():
    path = json.dumps({"modules": {"\\m": {"num_cells_by_type": {"LUT4": 3, "CARRY4": 5, "INV": 1}}}})
    depth = parse_ltp("Longest topological path in m (length=9):\n 0: a", path)
    assert depth == {"cells": 9, "lut": 3, "carry": 5, "inv": 1}
    assert parse_ltp("Longest topological path in top is length 52.", None) == {"cells": 52}
    with pytest.raises(QTriggerError, match="no longest path"):
        parse_ltp("nothing here", None)


def test_synthesis_script_each_stage_alone_and_flattened_top(tmp_path):
    files = [tmp_path / "static" / "shift_adder.v", tmp_path / "net_stage0.v", tmp_path / "net.v"]
    script = synthesis_script(files, "net", ["net_stage0"], tmp_path)
    assert script.count("design -load rtl_read") == 2
    assert "synth_xilinx -family xcup -top net_stage0 -flatten -noiopad -noclkbuf" in script
    assert "synth_xilinx -family xcup -top net -flatten -noiopad -noclkbuf" in script
    assert "net_stage0.ltp.txt" in script and "net.ltp.txt" not in script  # no ltp across registers
    assert "no place-and-route" in CAVEATS and "not a Vivado-equivalent" in CAVEATS


def test_synthesis_script_maps_lookup_roms_only_with_lookup_tables(tmp_path):
    plain = synthesis_script([tmp_path / "net_stage0.v", tmp_path / "net.v"], "net", ["net_stage0"], tmp_path)
    assert plain.startswith("read_verilog /") and "memory_map" not in plain
    files = [tmp_path / "static" / "lookup_table.v", tmp_path / "net_stage0.v", tmp_path / "net.v"]
    script = synthesis_script(files, "net", ["net_stage0"], tmp_path)
    assert script.startswith("read_verilog -defer ") and script.count("memory_map") == 2


def test_pack_unpack_round_trip_multiword_signed():
    layout = PortLayout(n=5, bits=15, frac=4, signed=True)  # 75 bits: three words
    rng = np.random.default_rng(0)
    values = rng.integers(-(2**14), 2**14, size=(50, 5)) / 16.0
    words = pack_rows(values, layout)
    assert words.shape == (50, 3)
    assert np.array_equal(unpack_words(words, layout), values)
    unsigned = PortLayout(n=2, bits=3, frac=0, signed=False)
    assert np.array_equal(unpack_words(pack_rows(np.array([[7.0, 5.0]]), unsigned), unsigned), [[7.0, 5.0]])


def test_find_latency_exactly_one_offset():
    expected = np.arange(100, dtype=float).reshape(100, 1) * 3 + 1
    outputs = np.concatenate([np.zeros((4, 1)), expected, np.zeros((6, 1))])
    counts = find_latency(outputs, expected, max_offset=8)
    assert [L for L, n in counts.items() if n == 100] == [4]
    assert max(n for L, n in counts.items() if L != 4) == 0


def test_per_event_parallel_and_shared():
    res = ({"lut": 100, "ff": 50, "dsp": 0, "bram": 0}, "yosys cells")
    ev = per_event(res, latency_cycles=3, ii=1, clock_ns=5.0, jets_per_event=4)
    assert ev["parallel"]["total"]["lut"] == 400 and ev["parallel"]["latency_ns"] == 15.0
    assert ev["shared"]["total"]["lut"] == 100 and ev["shared"]["latency_cycles"] == 6
    assert ev["cycles_per_event"] == 5 and ev["shared"]["meets_rate"]
    assert not per_event(res, 3, 2, 5.0, 4)["shared"]["meets_rate"]  # 8 cycles > 5 per event
    assert per_event(res, None, None, 5.0)["shared"]["latency_ns"] is None


def test_synthesis_skipped_with_note_without_yosys(monkeypatch, tmp_path):
    from qtrigger.firmware import synth as rtl_synth

    monkeypatch.setattr(rtl_synth, "find_yosys", lambda: None)
    result, note = rtl_synth.synthesize_or_note(tmp_path)
    assert result is None and note.startswith("yosys not found: RTL synthesis skipped") and "\n" not in note
    with pytest.raises(QTriggerError, match="synthesis needs yosys"):
        rtl_synth.synthesize(tmp_path)


def test_rtl_stage_refuses_non_empty_directory_and_bad_inputs(tmp_path):
    from qtrigger.emulate.network import DenseStage, QuantizedNetwork

    w = FixedType(6, 1, True, "RND_CONV", "SAT")
    stage = DenseStage("d", w, w, np.ones((3, 1), np.int64), np.zeros(1, np.int64), FixedType(20, 8, True), None, None)
    network = QuantizedNetwork("in", None, INPUT_TYPE, [stage])
    (tmp_path / "rtl").mkdir()
    (tmp_path / "rtl" / "old.v").write_text("keep me")
    with pytest.raises(QTriggerError, match="not empty"):
        rtl_stage(network, np.zeros((4, 3)), HLSConfig(), tmp_path / "rtl")
    assert (tmp_path / "rtl" / "old.v").read_text() == "keep me"
    with pytest.raises(QTriggerError, match=r"expected \(jets, 3\)"):
        rtl_stage(network, np.zeros((4, 2)), HLSConfig(), tmp_path / "new")


def _fake_run(tmp_path, default_sample):
    """A run directory whose files exist (contents are never read before the checks under test)."""
    import yaml

    from conftest import small_config_dict

    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "config.resolved.yaml").write_text(yaml.safe_dump(small_config_dict(default_sample, tmp_path)))
    (run / "model_qat.h5").write_bytes(b"")
    (run / "test_jets.npz").write_bytes(b"")
    return run


def _args(run, **kw):
    from argparse import Namespace

    return Namespace(run=str(run), output=kw.get("output"), overwrite=kw.get("overwrite", False), jets=None,
                     no_synth=kw.get("no_synth", False), json=False)


def test_rtl_command_checks_before_work(tmp_path, default_sample, monkeypatch):
    from qtrigger.cli.hls import handle_rtl as run_rtl_from_args
    from qtrigger.firmware import synth as rtl_synth

    with pytest.raises(QTriggerError, match="not a finished run directory"):
        run_rtl_from_args(_args(tmp_path))
    run = _fake_run(tmp_path, default_sample)
    existing = tmp_path / "hls" / "tiny" / "rtl"
    existing.mkdir(parents=True)
    (existing / "qtrigger_net.v").write_text("old")
    with pytest.raises(QTriggerError, match="pass --overwrite"):
        run_rtl_from_args(_args(run))
    assert (existing / "qtrigger_net.v").read_text() == "old"
    monkeypatch.setattr(rtl_synth, "find_yosys", lambda: None)  # an explicit synthesis command fails without yosys
    with pytest.raises(QTriggerError, match="synthesis needs yosys"):
        run_rtl_from_args(_args(run, output=str(tmp_path / "elsewhere")))


# ---------------------------------------------------------------- slow: Verilator + yosys


def require(module: str) -> None:
    """Skip (outside CI) or fail (in CI) when an ``rtl``-extra module is missing."""
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed: pip install '.[rtl]'"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must install the rtl extra)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def small():
    """(QuantizedNetwork, inputs) of a 6 -> 4 -> ReLU -> 1 QKeras MLP with random on-grid weights."""
    from qtrigger.emulate.network import extract_network
    from qtrigger.models.build import build_model

    model = build_model(6, 1, ModelConfig(hidden=[4]), QuantizationConfig(), INPUT_TYPE, quantized=True, seed=3)
    rng = np.random.default_rng(11)
    lsb = 2.0**-5
    for layer in model.layers:
        if type(layer).__name__ == "QDense":
            kernel, bias = layer.get_weights()
            codes = rng.integers(-32, 32, size=kernel.shape)
            codes[rng.random(kernel.shape) < 0.3] = 0
            layer.set_weights([codes * lsb, rng.integers(-16, 16, size=bias.shape) * lsb])
    codes = rng.integers(INPUT_TYPE.min_code // 2, INPUT_TYPE.max_code // 2, size=(1500, 6))
    return extract_network(model), codes * INPUT_TYPE.lsb


@pytest.fixture(scope="module")
def staged(small, tmp_path_factory):
    require("da4ml")
    require("verilator")
    from qtrigger.firmware.synth import find_yosys

    if find_yosys() is None:
        require("pyosys")  # skips or fails with the install hint
    network, x = small
    out = tmp_path_factory.mktemp("rtl") / "rtl"
    return rtl_stage(network, x, HLSConfig(strategy="distributed_arithmetic"), out, n_ties=800, n_overrange=400)


@pytest.mark.slow
def test_rtl_stage_latency_found_and_exact_vs_model(staged):
    lat = staged.latency
    assert lat.matching_offsets == [lat.latency_cycles] and lat.ii == 1  # exactly one offset, inputs every cycle
    assert lat.latency_cycles == staged.da4ml_estimate["pipeline_stages"]  # da4ml's declared latency, now measured
    assert lat.rows == 1500 + 800 + 400
    assert max(n for L, n in lat.rows_matching_by_offset.items() if L != lat.latency_cycles) < lat.rows // 2
    assert lat.mismatches_vs_model == {"real": 0, "ties": 0, "overrange": 0}
    data = staged.to_json()
    assert data["artefact"] == "da4ml Verilog" and data["mismatches_vs_model"] == 0
    assert data["latency_ns"] == 5.0 * lat.latency_cycles and "assuming timing closes" in data["latency_ns_note"]
    assert (staged.directory and os.path.isfile(os.path.join(staged.directory, "build_vivado_prj.tcl")))


@pytest.mark.slow
def test_rtl_stage_synthesis_counts_positive(staged):
    synth = staged.to_json()["synth"]
    assert synth["tool"] == "yosys" and synth["version"].startswith("Yosys ") and synth["caveats"] == CAVEATS
    assert synth["lut"] > 0 and synth["ff"] > 0 and synth["carry"] > 0 and synth["dsp"] == 0 and synth["bram"] == 0
    assert sum(synth["lut_by_size"].values()) == synth["lut"]
    stages = synth["per_stage"]
    assert len(stages) == staged.da4ml_estimate["pipeline_stages"]
    assert all(s["lut"] > 0 and s["ff"] == 0 and s["logic_depth"]["cells"] >= 1 and s["da4ml_cost_lut"] > 0
               for s in stages)


@pytest.mark.slow
def test_latency_search_rejects_a_wrong_model(staged, small):
    """The search can fail: against a network with one bias code changed, no offset matches every row."""
    from dataclasses import replace
    from pathlib import Path

    from da4ml.trace import to_pipeline

    from qtrigger.firmware.latency import run_stream
    from qtrigger.firmware.rtl import da4ml_trace, default_latency_cutoff

    network, x = small
    comb, _ = da4ml_trace(network, "half_even")
    pipe = to_pipeline(comb, default_latency_cutoff(network, 5.0), verbose=False)
    outputs = run_stream(Path(staged.directory) / "sim_latency" / "harness", x, pipe, extra_cycles=10)
    last = network.stages[-1]
    wrong = replace(network, stages=[*network.stages[:-1], replace(last, bias_codes=last.bias_codes + 1)])
    expected = wrong.forward_codes(x) * network.output_type.lsb
    assert all(n < len(x) for n in find_latency(outputs, expected, 9).values())
    right = network.forward_codes(x) * network.output_type.lsb
    assert find_latency(outputs, right, 9)[staged.latency.latency_cycles] == len(x)


@pytest.mark.slow
def test_rtl_check_defaults_to_qkeras_rounding(small, tmp_path):
    require("da4ml")
    require("verilator")
    from qtrigger.firmware.rtl_check import rtl_check, rtl_summary

    network, x = small
    result = rtl_check(network, x[:500], tmp_path / "chk", n_ties=500, n_overrange=200)
    assert result["rounding"] == "half_even" and result["exact"]
    assert all(r["qkeras_differences"]["jets"] == 0 for r in result["sets"].values())
    cost = result["rounding_cost_lut"]
    assert cost["half_up"] < cost["half_even"] and cost["half_up_saving"] == cost["half_even"] - cost["half_up"]
    text = rtl_summary(result)
    assert "RTL BIT-EXACT with the reference (= the trained model, QKeras rounding)" in text
    assert "half_up: cheaper by" in text and "not equal to the trained model" in text


def test_lookup_table_squares_equal_their_values():
    """Sum of four 8-bit squares by da4ml lookup tables (the anomaly score's RTL stage) is exact on random and extreme
    codes, and shallower than da4ml's variable multiplier. (yosys on such tables: the measured configs/l1_anomaly.yaml
    run in docs/results.md; a synthesis here costs ~40 s of suite time.)"""
    require("da4ml")
    from functools import reduce

    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    from qtrigger.emulate.score import square
    from qtrigger.firmware.rtl import HWCONFIG, SOLVER_OPTIONS

    def traced(square_fn):
        inputs = FixedVariableArray.from_kif(np.ones(4), np.full(4, 4), np.full(4, 3), HWConfig(*HWCONFIG),
                                             solver_options=dict(SOLVER_OPTIONS))
        total = reduce(lambda a, b: a + b, [square_fn(v) for v in inputs._vars.ravel()])
        return comb_trace(inputs, FixedVariableArray(np.array([total], dtype=object), dict(SOLVER_OPTIONS)))

    comb = traced(square)
    x = np.vstack([np.random.default_rng(1).integers(-128, 128, (60, 4)), [[-128, -128, 127, 0]]]) / 8.0
    assert np.array_equal([float(comb(row)[0]) for row in x], (x * x).sum(axis=1))
    assert comb.latency[1] < traced(lambda v: v * v).latency[1]
