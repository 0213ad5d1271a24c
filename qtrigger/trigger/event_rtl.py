"""RTL of the whole ``event_network`` seed: seed words → HT, jet count, preselection; port words → inputs → network → accept.

The accept-bit HLS C++ (:mod:`qtrigger.trigger.event_decision`) is checked in g++; this module builds
the same chain as pipelined Verilog with da4ml and proves it in Verilator, so the latency, II and
yosys counts quoted for an event-level trigger are those of everything between the seed's jet words
and the accept bit, not of the network alone.

Ports (one event per clock, every value an integer code, as da4ml's wrapper packs them):

- in: ``valid[s]`` and ``pt[s]`` for every seed slot ``s`` (the filled slots' pT words, pT order);
  the event inputs' port words (the jet inputs: for each of the leading ``features.event_jets`` slots,
  the word of every configured per-jet feature except ``Jet_pt``, taken from ``pt[s]``, ``Jet_phi`` as
  the phi code; the object inputs: every ``features.objects`` word); last, the score threshold code. The threshold is a port, as menu thresholds are run-time registers: one build
  serves every quoted rate.
- out: ``accept``, the HT word, the network's output code (times its LSB).

The logic is the C++'s: HT = sum of the filled slots' pT words >= the HT jet threshold, saturated;
jet count saturated to its input word; every other input as the builder's program says
(:mod:`qtrigger.inputs.event_ops`: gated words, Delta-phi on a common grid wrapped and saturated); every input code is placed on the network's
input type (``code * 2^-shift``, the network's own input quantizer); accept = preselection (>= n
slots with pT >= p and HT >= H) and output code >= threshold. The network is traced with QKeras
rounding (:func:`qtrigger.firmware.rtl.trace_network`), so the RTL equals the trained model. The front end and
the comparator are written for adder depth (balanced sums, one select tree for each Delta-phi's wrap and
saturation: :mod:`qtrigger.trigger.event_rtl_logic`).

:func:`event_chain_rtl` writes the project, streams real events (signal test and held-out rate
events, at each quoted rate's threshold and at thresholds next to each event's own score) and
random events at the word limits and preselection thresholds at II = 1, finds the latency by the
read-offset search of :mod:`qtrigger.firmware.latency`, counts mismatches against the Python chain
(:func:`qtrigger.trigger.event_decision.python_event_decisions`) and synthesizes with yosys.
"""

from __future__ import annotations

import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.emulate.network import QuantizedNetwork
from qtrigger.emulate.score import score_head_name, scored
from qtrigger.emulate.sets import extract_any_network
from qtrigger.errors import QTriggerError
from qtrigger.firmware.rtl import (
    HWCONFIG,
    SOLVER_OPTIONS,
    _kif,
    _require_da4ml,
    _verilator_root,
    default_latency_cutoff,
    trace_network,
    verilog_summary,
)
from qtrigger.firmware.rtl_stage import QKERAS_ROUNDING, RtlResult, measure_and_synthesize
from qtrigger.fixedpoint import FixedType
from qtrigger.inputs.object_event import event_input_spec
from qtrigger.inputs.seed_jets import NO_CODE, SeedJets
from qtrigger.trigger.event_decision import random_event_words
from qtrigger.trigger.event_rtl_logic import accept_bit, bit, ht_count_preselection, program_codes
from qtrigger.trigger.seeds import EVENT_SCORE_FAMILIES
from qtrigger.trigger.working_points import seed_from_dict

TOP = "qtrigger_event_seed"
ARTEFACT = "da4ml Verilog of the event_network seed: seed jet words and event-input port words -> HT, jet count, " \
           "input codes (Delta-phi), preselection -> network -> score head -> accept bit"
OUTPUTS = ("accept", "ht", "score")
DECISION_EVENTS_FILE = "decision_events.npz"


@dataclass(frozen=True)
class ChainLayout:
    """Which input port value holds what: the seed slots' valid bits and pT words, the event inputs' port words
    (``spec.port_formats``, :meth:`port_words`), the threshold."""

    spec: object  # an event-input builder (qtrigger.inputs.event / object_event)

    @property
    def n_slots(self) -> int:
        """Seed slots."""
        return int(self.spec.n_slots)

    @property
    def n_ports(self) -> int:
        """Port words of the event inputs."""
        return len(self.spec.port_formats)

    @property
    def n_inputs(self) -> int:
        """Values on the input port."""
        return 2 * self.n_slots + self.n_ports + 1

    def rows(self, jets, slot_words: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """Input port values per event: valid bits, pT words, port words, threshold code × score LSB.

        ``thresholds`` are already in output units (code × LSB); the port words are the builder's
        (:meth:`~qtrigger.inputs.event.EventInputSpec.port_words`: a jet ``Jet_pt`` slot word must equal the
        slot's pT word).
        """
        valid = jets.valid[:, :self.n_slots]
        pt = np.where(valid, jets.pt[:, :self.n_slots], 0)
        ports = self.spec.port_words(jets, slot_words)
        return np.column_stack([valid.astype(np.float64), pt.astype(np.float64), ports.astype(np.float64),
                                np.asarray(thresholds, np.float64)])


def _input_ports(network: QuantizedNetwork, spec, layout: ChainLayout):
    """The da4ml input array: valid bits, pT words, port words (each its own word's range), threshold."""
    from da4ml.trace import FixedVariableArray, HWConfig

    k_out, i_out, f_out = _kif(network.output_type)
    kifs = [(0, 1, 0)] * layout.n_slots + [(0, spec.words.pt_bits, 0)] * layout.n_slots
    kifs += [(int(fmt.signed), int(fmt.bits) - int(fmt.signed), 0) for fmt in spec.port_formats]
    kifs.append((1, i_out + k_out + 1, f_out))  # threshold: one code above the largest output fits
    k, i, f = (np.array(c) for c in zip(*kifs))
    return FixedVariableArray.from_kif(k, i, f, HWConfig(*HWCONFIG), solver_options=dict(SOLVER_OPTIONS))


def trace_event_chain(network: QuantizedNetwork, spec, shifts, preselection, layout: ChainLayout,
                      rounding: str = "half_even"):
    """The chain as one da4ml ``CombLogic`` (see the module docstring); ``network`` a
    :class:`~qtrigger.emulate.score.ScoredNetwork` (the network, then its score head); ``preselection`` an
    event-score :class:`~qtrigger.trigger.seeds.Seed` (its score threshold is not used: a port)."""
    from da4ml.trace import FixedVariableArray, comb_trace


    network = scored(network)
    inputs = _input_ports(network, spec, layout)
    v = list(inputs._vars.ravel())
    hw = v[0].hwconf
    valid, pt = v[:layout.n_slots], v[layout.n_slots:2 * layout.n_slots]
    ht, count, presel = ht_count_preselection(valid, pt, spec, preselection, hw)
    codes = program_codes(valid, pt, v[2 * layout.n_slots:-1], spec.program, hw) + [ht, count]
    x = [bit(c, hw) * 2.0 ** -int(s) for c, s in zip(codes, shifts)]
    outputs = trace_network(FixedVariableArray(np.array(x, dtype=object), dict(SOLVER_OPTIONS)), network.network,
                            rounding)
    score = network.head.trace(list(outputs._vars.ravel()))  # the score head: one stage, whatever the score
    accept = accept_bit(score, v[-1], presel, hw)
    outputs = FixedVariableArray(np.array([accept, ht, score], dtype=object), dict(SOLVER_OPTIONS))
    return comb_trace(inputs, outputs)


def expected_outputs(preselection, jets, slot_words: np.ndarray, thresholds: np.ndarray, spec, preprocessor,
                     network: QuantizedNetwork) -> np.ndarray:
    """Per event the Python chain's [accept, HT, score] (score and threshold in output units).

    The same chain as :func:`qtrigger.trigger.event_decision.python_event_decisions` with a threshold
    per event: words → codes (the builder's ``codes``) → exact network, and
    accept = the seed's preselection and score code >= threshold code.
    """

    codes, _ = spec.codes(slot_words, jets)
    network = scored(network)
    lsb = network.output_type.lsb
    score = network.forward_codes(preprocessor.transform(codes)).reshape(len(codes), -1)[:, 0].astype(np.int64)
    threshold_codes = np.rint(np.asarray(thresholds, np.float64) / lsb).astype(np.int64)
    accept = preselection.preselection().fires(jets) & (score >= threshold_codes)
    return np.column_stack([accept.astype(np.float64), jets.ht.astype(np.float64), score * lsb])


def clip_threshold(code: int, out_type: FixedType) -> int:
    """A seed's score code on the threshold port: within [min code, max code + 1] (max + 1: never accepts)."""
    return int(np.clip(int(code), out_type.min_code, out_type.max_code + 1))


def chain_stimulus(seeds: list, real_sets: dict, spec, preprocessor, network: QuantizedNetwork, n_random: int,
                   rng_seed: int = 0) -> dict[str, tuple]:
    """Named sets of (SeedJets, slot words, thresholds in output units) to stream.

    Real events at every quoted seed's threshold in turn; the same events at their own score code
    -1/0/+1 (the comparator's edges); random events at the word limits and preselection thresholds
    (:func:`~qtrigger.trigger.event_decision.random_event_words`), also at their own score -1/0/+1.
    """

    out_type = network.output_type
    rng = np.random.default_rng(rng_seed)
    codes = [clip_threshold(s.score_code, out_type) for s in seeds]

    def own_score(jets, words):
        x, _ = spec.codes(words, jets)
        score = network.forward_codes(preprocessor.transform(x)).reshape(len(x), -1)[:, 0].astype(np.int64)
        return np.clip(score + rng.integers(-1, 2, len(score)), out_type.min_code, out_type.max_code + 1)

    sets = {}
    for name, (jets, words) in real_sets.items():
        at_seeds = np.array(codes, np.int64)[np.arange(len(jets.pt)) % len(codes)]
        sets[f"{name} at the seed thresholds"] = (jets, words, at_seeds * out_type.lsb)
        sets[f"{name} at own score +-1"] = (jets, words, own_score(jets, words) * out_type.lsb)
    if n_random:
        jets, words = random_event_words(seeds[0], spec, n_random, rng_seed)
        sets["random events at the word limits"] = (jets, words, own_score(jets, words) * out_type.lsb)
    return sets


def _check_seeds(seeds: list) -> None:
    if not seeds:
        raise QTriggerError("event RTL: no event_network seed to build (run the trigger study first)")
    first = seeds[0]
    for seed in seeds:
        if seed.family not in EVENT_SCORE_FAMILIES:
            raise QTriggerError(f"event RTL: seed family {seed.family!r}; expected one of {list(EVENT_SCORE_FAMILIES)}")
        if (seed.n_jets, seed.jet_pt_code, seed.ht_code) != (first.n_jets, first.jet_pt_code, first.ht_code):
            raise QTriggerError("event RTL: the quoted event_network seeds differ in their preselection; "
                                "one design holds one preselection")


def event_chain_rtl(network: QuantizedNetwork, spec, preprocessor, seeds: list, real_sets: dict, hls_cfg, out_dir, *,
                    synthesize: bool = True, n_random: int = 20_000, rng_seed: int = 0, nproc: int = 2):
    """Write, prove and (with yosys) synthesize the event seed's RTL; returns a
    :class:`~qtrigger.firmware.rtl_stage.RtlResult` whose ``design`` says what the Verilog holds.

    ``seeds``: the quoted ``event_network`` seeds (one preselection; their thresholds are streamed);
    ``real_sets``: name → (SeedJets, slot words) of real events. Raises QTriggerError for a non-empty
    ``out_dir`` or missing da4ml/Verilator; a missing yosys only skips synthesis.
    """
    from da4ml.codegen import VerilogModel
    from da4ml.trace import to_pipeline


    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise QTriggerError(f"{out_dir}: exists and is not empty; expected a new directory for the RTL project")
    _check_seeds(seeds)
    network = scored(network)
    _require_da4ml()
    _verilator_root()
    clock, part = float(hls_cfg.clock_period_ns), str(hls_cfg.part)
    layout = ChainLayout(spec)
    out_dir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    comb = trace_event_chain(network, spec, list(preprocessor.shifts), seeds[0], layout)
    cutoff = float(default_latency_cutoff(network.network, clock, part))
    VerilogModel(comb, TOP, out_dir, latency_cutoff=cutoff, clock_period=clock, part_name=part).write(
        metadata={"generator": "qtrigger",
                  "rounding": "half_even" if isinstance(network.network, QuantizedNetwork) else "hgq2",
                  "design": f"event seed ({seeds[0].family}, score {network.head.name})"})
    pipe = to_pipeline(comb, cutoff, verbose=False)
    seconds = {"write": round(time.perf_counter() - start, 1)}

    stimulus = chain_stimulus(seeds, real_sets, spec, preprocessor, network, n_random, rng_seed)
    rows = {name: layout.rows(jets, words, thr) for name, (jets, words, thr) in stimulus.items()}
    expected = np.concatenate([expected_outputs(seeds[0], *stimulus[name], spec, preprocessor, network)
                               for name in rows])
    latency, synth, note = measure_and_synthesize(out_dir, TOP, pipe, expected, rows, clock, synthesize, seconds, nproc)
    out_type = network.output_type
    design = {
        "artefact": ARTEFACT, "top": TOP, "outputs": list(OUTPUTS),
        "inputs": f"{layout.n_slots} valid bits, {layout.n_slots} pT words, {layout.n_ports} {spec.kind} port words, "
                  "1 score threshold code (run-time register)",
        "preselection": seeds[0].preselection().describe(spec.words),
        "thresholds_streamed": [clip_threshold(s.score_code, out_type) for s in seeds],
        "rows": {name: int(len(r)) for name, r in rows.items()},
        "accepted": {name: int(e[:, 0].sum()) for name, e in
                     zip(rows, np.split(expected, np.cumsum([len(r) for r in rows.values()])[:-1]))},
        "reference": "Python chain: words -> the builder's codes -> exact int64 network -> preselection and "
                     "score >= threshold (the chain the accept-bit C++ is checked against)",
    }
    return RtlResult(str(out_dir), clock, part, verilog_summary(comb, cutoff, clock), latency, synth, note,
                     1, int(getattr(hls_cfg, "time_multiplexing", 1)), seconds, design=design,
                     rounding=getattr(network, "rounding_note", QKERAS_ROUNDING))


# ================================================================ the events a run checks its decision on


def save_decision_events(path, sets: dict) -> Path:
    """Write name → (SeedJets, slot words) sets as ``decision_events.npz`` (pT words, validity, HT, words)."""
    arrays, names = {}, list(sets)
    for k, (jets, words) in enumerate(sets.values()):
        arrays.update({f"pt_{k}": jets.pt.astype(np.int32), f"valid_{k}": jets.valid, f"ht_{k}": jets.ht.astype(np.int32),
                       f"words_{k}": np.asarray(words).astype(np.int32)})
    np.savez_compressed(path, names=np.array(names), **arrays)
    return Path(path)


def load_decision_events(path, spec=None) -> dict:
    """The sets of :func:`save_decision_events` (scores unset); a missing, corrupt or (with ``spec``, an
    :class:`~qtrigger.inputs.event.EventInputSpec`) wrongly shaped file is a one-line error naming it."""

    path = Path(path)
    if not path.is_file():
        raise QTriggerError(f"{path}: no such file (an event-level run writes it in its trigger study; re-run it)")
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {}
            for k, name in enumerate(data["names"].tolist()):
                arrays = {key: data[f"{key}_{k}"] for key in ("pt", "valid", "ht", "words")}
                _check_decision_arrays(path, name, arrays, spec)
                pt = arrays["pt"].astype(np.int64)
                jets = SeedJets(pt, np.full(pt.shape, NO_CODE, np.int64), arrays["valid"].astype(bool),
                                arrays["ht"].astype(np.int64), 0)
                out[name] = (jets, arrays["words"].astype(np.int64))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise QTriggerError(f"{path}: not a readable decision-events file ({type(err).__name__}: {err})") from None
    return out


def _check_decision_arrays(path: Path, name: str, arrays: dict, spec) -> None:
    """Each set's arrays hold integers; with ``spec``, one row per event shaped as its slots and words."""
    n = len(arrays["ht"]) if arrays["ht"].ndim == 1 else -1
    shapes = {"ht": (n,), "pt": (n, spec.n_slots), "valid": (n, spec.n_slots),
              "words": (n, *spec.word_shape)} if spec is not None else {}
    for key in ("ht", "pt", "valid", "words"):
        array, shape = arrays[key], shapes.get(key)
        integers = np.issubdtype(array.dtype, np.integer) or array.dtype == bool
        if not integers or (shape is not None and array.shape != shape):
            wanted = "(" + ", ".join(["events", *map(str, shape[1:])]) + ")" if shape else "any shape"
            raise QTriggerError(f"{path}: set {name!r}: {key} array of shape {array.shape} and dtype {array.dtype}; "
                                f"expected integers of shape {wanted} (the run's event inputs)")


def run_seeds(trigger_metrics: dict) -> list:
    """The quoted ``event_network`` seeds of a run's ``trigger`` metrics, in rate order."""

    at_rate = (trigger_metrics or {}).get("at_rate") or {}
    return [seed_from_dict(point["event_network"]["seed"]) for point in at_rate.values()
            if (point.get("event_network") or {}).get("seed", {}).get("score_code") is not None]


def event_chain_inputs(run, max_events: int | None = None) -> tuple[list, dict]:
    """The quoted seeds and the checked ``decision_events.npz`` sets of a finished event-level run (before any
    work: a missing seed or an unreadable or wrongly shaped file is a one-line error); ``max_events`` caps each set."""
    seeds = run_seeds(run.result.trigger)
    if not seeds:
        raise QTriggerError(f"{run.directory}: no quoted event_network seed in metrics.json (trigger study off?)")
    sets = load_decision_events(Path(run.directory) / DECISION_EVENTS_FILE, event_input_spec(run.config))
    if max_events is not None:
        sets = {name: (jets.take(np.arange(min(max_events, len(words)))), words[:max_events])
                for name, (jets, words) in sets.items()}
    return seeds, sets


def event_chain_rtl_for_run(run, inputs: tuple[list, dict], out_dir, *, synthesize: bool = True):
    """:func:`event_chain_rtl` for a finished event-level run (``qtrigger hls rtl RUN``): its network and the
    seeds and events of :func:`event_chain_inputs`."""
    seeds, sets = inputs
    network = scored(extract_any_network(run.load_model("qat")), score_head_name(run.config))  # QKeras or HGQ2
    spec = event_input_spec(run.config)
    return event_chain_rtl(network, spec, run.preprocessor, seeds, sets, run.config.hls, out_dir,
                           synthesize=synthesize)
