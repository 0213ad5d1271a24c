"""The ``event_network`` seed's accept bit as HLS C++: seed words → HT, preselection; port words → inputs → network.

``<project>_event_seed.h`` takes what the seed firmware receives per event: the filled seed slots' pT
words and the event inputs' port words (the jet inputs: every per-slot feature word of the leading
``features.event_jets`` slots with phi as the phi code; the object inputs: every ``features.objects``
word). It computes HT (saturating), the jet count and every network input as the builder's program
says (:mod:`qtrigger.inputs.event_ops`: gated words, Delta-phi wrapped and saturated), places every
input code on the network's input type (``code * 2^-shift``), runs the hls4ml network of the run's
project and accepts when the preselection passes and the output code is >= the seed's score code. A
g++ build of it is compared with the Python chain (the builder's ``codes``, the exact integer
network, :meth:`~qtrigger.trigger.seeds.Seed.fires`) on real events plus random events at the word
limits and thresholds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from qtrigger.emulate.score import ScoredNetwork, scored
from qtrigger.errors import QTriggerError
from qtrigger.inputs.seed_jets import SeedJets
from qtrigger.trigger.decision import _run, ap_types_dir, test_driver


def _op_cpp(i: int, op) -> str:
    """One network input of the event-input program (:mod:`qtrigger.inputs.event_ops`) as a C++ statement."""
    def gate(g):
        return f"valid[{g.index}]" if g.kind == "slot" else f"(w[{g.index}] != 0)"

    source = f"(long long)pt[{op.index}]" if op.source == "pt" else f"(long long)w[{op.index}]"
    value = source
    if op.dphi is not None:
        p = op.dphi
        ref = f"({gate(p.ref_gate)} ? (long long)w[{p.ref_port}] : 0LL)"
        value = f"delta_phi({source} * {p.scale}LL - {ref} * {p.ref_scale}LL, {p.half_turn}LL, {p.lo}LL, {p.hi}LL)"
    return f"    x[{i}] = to_input({gate(op.gate)} ? {value} : 0LL, SHIFT[{i}]);"


def _header(project: str, seed, spec, shifts: list[int], network: ScoredNetwork) -> str:
    score_type, out_type = network.output_type, network.output_codes_type
    words = spec.words
    program = spec.program
    score_code = int(np.clip(seed.score_code, score_type.min_code, score_type.max_code + 1))
    signed = "ap_int" if out_type.signed else "ap_uint"
    guard = f"{project.upper()}_EVENT_SEED_H_"
    statements = "\n".join(_op_cpp(i, op) for i, op in enumerate(program))
    return f"""// {project}_event_seed.h -- event_network seed accept bit (written by qtrigger.trigger.event_decision).
// Seed: {seed.describe(words, score_type.lsb)}
// Per event: N_SLOTS seed slots (leading selected jets, pT order) with the pT word ({words.pt_lsb_gev:g} GeV LSB,
// truncated, {words.pt_bits} bits) and N_PORTS port words of the {spec.kind} event inputs (integer codes, as
// qtrigger.inputs.event_ops describes them). HT = sum of the filled slots' pT words >= HT_JET_PT_CODE,
// saturated at {words.ht_bits} bits; preselection = HT >= PRESEL_HT_CODE and >= PRESEL_MIN_JETS slots with
// pT >= PRESEL_JET_PT_CODE; accept = preselection && score code >= SCORE_CODE, the score computed from the
// network's N_OUTPUTS output codes by its score head ({network.head.name}).
#ifndef {guard}
#define {guard}

#include "ap_fixed.h"
#include "ap_int.h"
#include "{project}.h"

namespace {project}_event_seed {{

static const int N_SLOTS = {spec.n_slots};
static const int N_PORTS = {max(1, len(spec.port_formats))};
static const int N_INPUTS = {len(program) + 2};
static const int SHIFT[N_INPUTS] = {{{', '.join(str(int(s)) for s in shifts)}}};
static const long long HT_JET_PT_CODE = {int(words.pt_code(words.ht_jet_pt_gev))}LL;
static const long long HT_MAX_CODE = {words.ht_max_code}LL;
static const long long COUNT_MAX = {spec.count_max}LL;
static const long long PRESEL_MIN_JETS = {int(seed.n_jets)}LL;
static const long long PRESEL_JET_PT_CODE = {int(seed.jet_pt_code or 0)}LL;
static const long long PRESEL_HT_CODE = {int(seed.ht_code or 0)}LL;
static const long long SCORE_CODE = {score_code}LL;
static const int N_OUTPUTS = {network.n_outputs};
static const int OUT_WIDTH = {out_type.width};
typedef ap_uint<{words.pt_bits}> pt_t;
typedef ap_uint<{words.ht_bits}> ht_t;
typedef ap_uint<{max(words.ht_bits, words.pt_bits) + 1}> ht_acc_t;
typedef ap_int<32> word_t;
typedef ap_fixed<72, 48> wide_t;  // holds every word and its 2^-shift exactly
typedef {"ap_fixed" if out_type.signed else "ap_ufixed"}<{out_type.width}, {out_type.integer}> out_value_t;  // the exact output type

// the network's own input and result types, whatever the front end named them (QKeras: input_t, HGQ2: <input>_t)
template <class F> struct network_io;
template <class I, class O> struct network_io<void(I *, O *)> {{
    typedef I input;
    typedef O result;
}};
typedef network_io<decltype({project})>::input input_t;
typedef network_io<decltype({project})>::result result_t;

inline ht_t event_ht(const pt_t pt[N_SLOTS], const bool valid[N_SLOTS]) {{
#pragma HLS INLINE
    ht_t ht = 0;
    for (int j = 0; j < N_SLOTS; j++) {{
#pragma HLS UNROLL
        ht_acc_t sum = ht_acc_t(ht) + ht_acc_t((valid[j] && pt[j] >= HT_JET_PT_CODE) ? pt[j] : pt_t(0));
        ht = (sum > ht_acc_t(HT_MAX_CODE)) ? ht_t(HT_MAX_CODE) : ht_t(sum);
    }}
    return ht;
}}

inline bool preselected(const pt_t pt[N_SLOTS], const bool valid[N_SLOTS], ht_t ht) {{
#pragma HLS INLINE
    int n = 0;
    for (int j = 0; j < N_SLOTS; j++) {{
#pragma HLS UNROLL
        n += (valid[j] && pt[j] >= PRESEL_JET_PT_CODE) ? 1 : 0;
    }}
    return n >= PRESEL_MIN_JETS && ht >= PRESEL_HT_CODE;
}}

inline input_t to_input(long long code, int shift) {{
#pragma HLS INLINE
    wide_t wide = wide_t(code);
    wide = wide >> shift;
    return input_t(wide);
}}

// Delta-phi on a common phi grid: one conditional wrap at +-HALF_TURN, then saturation to the input word
inline long long delta_phi(long long d, long long HALF_TURN, long long lo, long long hi) {{
#pragma HLS INLINE
    if (d >= HALF_TURN) d -= 2 * HALF_TURN;
    else if (d < -HALF_TURN) d += 2 * HALF_TURN;
    return d < lo ? lo : (d > hi ? hi : d);
}}

inline void event_inputs(const pt_t pt[N_SLOTS], const bool valid[N_SLOTS], const word_t w[N_PORTS], ht_t ht,
                         input_t x[N_INPUTS]) {{
#pragma HLS INLINE
{statements}
    long long count = 0;
    for (int j = 0; j < N_SLOTS; j++) count += valid[j] ? 1 : 0;
    x[N_INPUTS - 2] = to_input((long long)ht.to_uint64(), SHIFT[N_INPUTS - 2]);
    x[N_INPUTS - 1] = to_input(count > COUNT_MAX ? COUNT_MAX : count, SHIFT[N_INPUTS - 1]);
}}

inline long long output_code(result_t r) {{
#pragma HLS INLINE
    out_value_t value = r;  // exact: the output is on this type's grid and within its range
    ap_uint<OUT_WIDTH> bits = value.range(OUT_WIDTH - 1, 0);
    {signed}<OUT_WIDTH> code = bits;
    return (long long)code;
}}

inline long long score_code(const result_t y[N_OUTPUTS]) {{
#pragma HLS INLINE
    long long c[N_OUTPUTS];
    for (int i = 0; i < N_OUTPUTS; i++) c[i] = output_code(y[i]);
    long long score;
    {network.head.cpp(network.n_outputs)}
    return score;
}}

inline bool accept_event(const pt_t pt[N_SLOTS], const bool valid[N_SLOTS], const word_t w[N_PORTS],
                         long long &score, ht_t &ht) {{
    ht = event_ht(pt, valid);
    input_t x[N_INPUTS];
    event_inputs(pt, valid, w, ht, x);
    result_t y[N_OUTPUTS];
    {project}(x, y);
    score = score_code(y);
    return preselected(pt, valid, ht) && score >= SCORE_CODE;
}}

}}  // namespace {project}_event_seed

#endif  // {guard}
"""


def _driver(project: str) -> str:
    return test_driver(f"""// {project}_event_seed_test.cpp -- reads "n_events", then per event "n pt_1..pt_n" and the
// N_PORTS port words; writes per event: accept HT score_code.""", f"{project}_event_seed.h", "N_SLOTS", """\
        pt_t pt[N_SLOTS];
        bool valid[N_SLOTS];
        word_t w[N_PORTS];
        for (int j = 0; j < N_SLOTS; j++) {
            long long p = 0;
            valid[j] = j < n;
            if (valid[j] && std::fscanf(in, "%lld", &p) != 1) return 3;
            pt[j] = pt_t(valid[j] ? p : 0);
        }
        for (int q = 0; q < N_PORTS; q++) {
            long long v = 0;
            if (std::fscanf(in, "%lld", &v) != 1) return 3;
            w[q] = word_t(v);
        }
        long long score = 0;
        ht_t ht = 0;
        bool accept = accept_event(pt, valid, w, score, ht);
        std::fprintf(out, "%d %lld %lld\\n", (int)accept, (long long)ht.to_uint64(), score);
""")


def random_event_words(seed, spec, n_events: int, rng_seed: int = 0) -> tuple[SeedJets, np.ndarray]:
    """Random events at the word limits and the preselection thresholds: (SeedJets, slot words)."""
    rng = np.random.default_rng(rng_seed)
    words = spec.words
    counts = rng.integers(0, spec.n_slots + 1, n_events)
    valid = np.arange(spec.n_slots)[None, :] < counts[:, None]
    shape = (n_events, spec.n_slots)
    center = int(seed.jet_pt_code or words.pt_code(words.ht_jet_pt_gev))
    kind = rng.random(shape)
    pt = np.where(kind < 0.4, np.clip(center + rng.integers(-1, 2, shape), 0, words.pt_max_code),
                  np.where(kind < 0.45, words.pt_max_code, rng.integers(0, 8 * center + 1, shape)))
    pt = -np.sort(-np.where(valid, pt, 0), axis=1)  # slots hold jets in pT order
    ht_min = words.pt_code(words.ht_jet_pt_gev)
    ht = np.minimum(np.where(valid & (pt >= ht_min), pt, 0).sum(axis=1), words.ht_max_code)
    jets = SeedJets(pt.astype(np.int64), np.full(shape, np.iinfo(np.int64).min), valid, ht.astype(np.int64), 0)
    return jets, spec.random_words(rng, pt, valid)


def python_event_decisions(seed, jets: SeedJets, slot_words: np.ndarray, spec, preprocessor, network) -> np.ndarray:
    """Per event [accept, HT, score code] from the Python chain (builder words → codes → exact network → its score
    head, with a :class:`~qtrigger.emulate.score.ScoredNetwork` → seed)."""
    codes, _ = spec.codes(slot_words, jets)
    score = network.forward_codes(preprocessor.transform(codes)).reshape(len(codes), -1)[:, 0].astype(np.int64)
    accept = seed.fires(jets.with_event_score(score))
    return np.column_stack([accept, jets.ht, score]).astype(np.int64)


def check_event_seed_csim(hls_dir, project: str, seed, spec, preprocessor, network,
                          events: list[tuple[SeedJets, np.ndarray]], n_random: int = 20_000, rng_seed: int = 0) -> dict:
    """Write ``<project>_event_seed.h`` into the HLS project, build it with g++ and compare with Python.

    ``events``: (SeedJets, slot words) sets of real events; ``n_random`` random events at the word
    limits and thresholds are added. Returns the counts of events and disagreements.
    """
    gxx = shutil.which("g++")
    if gxx is None:
        raise QTriggerError("g++ not found on PATH: cannot compile the event seed decision (install g++)")
    hls_dir = Path(hls_dir).resolve()
    firmware = hls_dir / "firmware"
    header = firmware / f"{project}_event_seed.h"
    network = scored(network)
    header.write_text(_header(project, seed, spec, list(preprocessor.shifts), network))
    driver = hls_dir / f"{project}_event_seed_test.cpp"
    driver.write_text(_driver(project))
    exe = hls_dir / f"{project}_event_seed_test"
    _run([gxx, "-std=c++14", "-O1", f"-I{ap_types_dir()}", f"-I{firmware}", f"-I{firmware / 'ap_types'}",
          f'-DWEIGHTS_DIR="{firmware / "weights"}"', str(driver), str(firmware / f"{project}.cpp"), "-o", str(exe)],
         "compiling the event seed decision")
    sets = [random_event_words(seed, spec, n_random, rng_seed), *events]
    out = {"header": header.name, "events": 0, "random_events": n_random, "disagreements": 0,
           "accept_disagreements": 0, "score_disagreements": 0, "accepted": 0, "random_accepted": 0}
    for k, (jets, words) in enumerate(sets):
        counts = jets.valid.sum(axis=1)
        ports = spec.port_words(jets, words)
        if ports.shape[1] == 0:
            ports = np.zeros((len(counts), 1), np.int64)
        lines = [str(len(counts))]
        for row in range(len(counts)):
            n = int(counts[row])
            lines.append(" ".join([str(n), *map(str, jets.pt[row, :n].tolist()), *map(str, ports[row].tolist())]))
        path_in, path_out = hls_dir / f"event_seed_input_{k}.txt", hls_dir / f"event_seed_output_{k}.txt"
        path_in.write_text("\n".join(lines) + "\n")
        _run([str(exe), str(path_in), str(path_out)], "running the event seed decision test")
        got = np.loadtxt(path_out, dtype=np.int64, ndmin=2).reshape(-1, 3)
        want = python_event_decisions(seed, jets, words, spec, preprocessor, network)
        out["events"] += len(counts)
        out["disagreements"] += int((got != want).any(axis=1).sum())
        out["accept_disagreements"] += int((got[:, 0] != want[:, 0]).sum())
        out["score_disagreements"] += int((got[:, 2] != want[:, 2]).sum())
        out["accepted"] += int(want[:, 0].sum())
        if k == 0:
            out["random_accepted"] = int(want[:, 0].sum())
        path_in.unlink()
        path_out.unlink()
    return out
