"""The ``event_network`` seed's accept bit as HLS C++: jet words → Delta-phi, HT, preselection → network → accept.

``<project>_event_seed.h`` takes what the seed firmware receives per event (the filled seed slots'
pT words and, for the leading ``features.event_jets`` slots, every per-slot feature word with phi as
the phi code), computes HT (saturating), the jet count, Delta-phi to the leading jet (wrapped at
+-720 codes, saturated to the phi word), places every input code on the network's input type
(``code * 2^-shift``), runs the hls4ml network of the run's project and accepts when the preselection
passes and the output code is >= the seed's score code. A g++ build of it is compared with the
Python chain (:func:`qtrigger.inputs.event.codes_from_words`, the exact integer network,
:meth:`~qtrigger.trigger.seeds.Seed.fires`) on real events plus random events at the word limits
and thresholds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.inputs.codes import feature_code_range
from qtrigger.inputs.event import EventInputSpec, codes_from_words
from qtrigger.inputs.seed_jets import SeedJets
from qtrigger.trigger.decision import _run, ap_types_dir, test_driver


def _header(project: str, seed, spec: EventInputSpec, shifts: list[int], score_type) -> str:
    words = spec.words
    n_features = len(spec.jet_features)
    phi = spec.jet_features.index("Jet_phi") if "Jet_phi" in spec.jet_features else -1
    phi_lo, phi_hi = feature_code_range(spec.formats["Jet_phi"].bits, spec.formats["Jet_phi"].signed) \
        if phi >= 0 else (0, 0)
    count_max = 2 ** spec.input_formats["n_jets"].bits - 1
    score_code = int(np.clip(seed.score_code, score_type.min_code, score_type.max_code + 1))
    signed = "ap_int" if score_type.signed else "ap_uint"
    guard = f"{project.upper()}_EVENT_SEED_H_"
    return f"""// {project}_event_seed.h -- event_network seed accept bit (written by qtrigger.trigger.event_decision).
// Seed: {seed.describe(words, score_type.lsb)}
// Per event: N_SLOTS seed slots (leading selected jets, pT order) with the pT word ({words.pt_lsb_gev:g} GeV LSB,
// truncated, {words.pt_bits} bits) and, for the first N_JETS slots, the words of {', '.join(spec.jet_features)}
// (integer codes; Jet_phi as the phi code, LSB pi/720). HT = sum of the filled slots' pT words >= HT_JET_PT_CODE,
// saturated at {words.ht_bits} bits; preselection = HT >= PRESEL_HT_CODE and >= PRESEL_MIN_JETS slots with
// pT >= PRESEL_JET_PT_CODE; accept = preselection && network output code >= SCORE_CODE.
#ifndef {guard}
#define {guard}

#include "ap_fixed.h"
#include "ap_int.h"
#include "{project}.h"

namespace {project}_event_seed {{

static const int N_SLOTS = {spec.n_slots};
static const int N_JETS = {spec.n_jets};
static const int N_FEATURES = {n_features};
static const int N_INPUTS = N_JETS * N_FEATURES + 2;
static const int PHI_INDEX = {phi};
static const long long PHI_MIN = {phi_lo}LL, PHI_MAX = {phi_hi}LL, HALF_TURN = 720LL;
static const int SHIFT[N_INPUTS] = {{{', '.join(str(int(s)) for s in shifts)}}};
static const long long HT_JET_PT_CODE = {int(words.pt_code(words.ht_jet_pt_gev))}LL;
static const long long HT_MAX_CODE = {words.ht_max_code}LL;
static const long long COUNT_MAX = {count_max}LL;
static const long long PRESEL_MIN_JETS = {int(seed.n_jets)}LL;
static const long long PRESEL_JET_PT_CODE = {int(seed.jet_pt_code or 0)}LL;
static const long long PRESEL_HT_CODE = {int(seed.ht_code or 0)}LL;
static const long long SCORE_CODE = {score_code}LL;
static const int SCORE_WIDTH = {score_type.width};
typedef ap_uint<{words.pt_bits}> pt_t;
typedef ap_uint<{words.ht_bits}> ht_t;
typedef ap_uint<{max(words.ht_bits, words.pt_bits) + 1}> ht_acc_t;
typedef ap_int<32> word_t;
typedef ap_fixed<72, 48> wide_t;  // holds every word and its 2^-shift exactly
typedef {"ap_fixed" if score_type.signed else "ap_ufixed"}<{score_type.width}, {score_type.integer}> score_value_t;  // the exact output type

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

inline void event_inputs(const word_t words[N_JETS][N_FEATURES], const bool valid[N_SLOTS], ht_t ht,
                         input_t x[N_INPUTS]) {{
#pragma HLS INLINE
    for (int k = 0; k < N_JETS; k++) {{
#pragma HLS UNROLL
        for (int f = 0; f < N_FEATURES; f++) {{
#pragma HLS UNROLL
            long long v = valid[k] ? (long long)words[k][f] : 0LL;
            if (f == PHI_INDEX) {{
                long long d = v - (valid[0] ? (long long)words[0][f] : 0LL);
                if (d >= HALF_TURN) d -= 2 * HALF_TURN;
                else if (d < -HALF_TURN) d += 2 * HALF_TURN;
                d = d < PHI_MIN ? PHI_MIN : (d > PHI_MAX ? PHI_MAX : d);
                v = valid[k] ? d : 0LL;
            }}
            x[k * N_FEATURES + f] = to_input(v, SHIFT[k * N_FEATURES + f]);
        }}
    }}
    long long count = 0;
    for (int j = 0; j < N_SLOTS; j++) count += valid[j] ? 1 : 0;
    x[N_INPUTS - 2] = to_input((long long)ht.to_uint64(), SHIFT[N_INPUTS - 2]);
    x[N_INPUTS - 1] = to_input(count > COUNT_MAX ? COUNT_MAX : count, SHIFT[N_INPUTS - 1]);
}}

inline long long score_code(result_t r) {{
#pragma HLS INLINE
    score_value_t value = r;  // exact: the output is on this type's grid and within its range
    ap_uint<SCORE_WIDTH> bits = value.range(SCORE_WIDTH - 1, 0);
    {signed}<SCORE_WIDTH> code = bits;
    return (long long)code;
}}

inline bool accept_event(const pt_t pt[N_SLOTS], const bool valid[N_SLOTS], const word_t words[N_JETS][N_FEATURES],
                         long long &score, ht_t &ht) {{
    ht = event_ht(pt, valid);
    input_t x[N_INPUTS];
    event_inputs(words, valid, ht, x);
    result_t y[1];
    {project}(x, y);
    score = score_code(y[0]);
    return preselected(pt, valid, ht) && score >= SCORE_CODE;
}}

}}  // namespace {project}_event_seed

#endif  // {guard}
"""


def _driver(project: str) -> str:
    return test_driver(f"""// {project}_event_seed_test.cpp -- reads "n_events", then per event "n pt_1..pt_n" and, for the first
// min(n, N_JETS) slots, N_FEATURES words each; writes per event: accept HT score_code.""", f"{project}_event_seed.h", "N_SLOTS", """\
        pt_t pt[N_SLOTS];
        bool valid[N_SLOTS];
        word_t words[N_JETS][N_FEATURES];
        for (int j = 0; j < N_SLOTS; j++) {
            long long p = 0;
            valid[j] = j < n;
            if (valid[j] && std::fscanf(in, "%lld", &p) != 1) return 3;
            pt[j] = pt_t(valid[j] ? p : 0);
        }
        for (int k = 0; k < N_JETS; k++)
            for (int f = 0; f < N_FEATURES; f++) {
                long long w = 0;
                if (k < n && std::fscanf(in, "%lld", &w) != 1) return 3;
                words[k][f] = word_t(w);
            }
        long long score = 0;
        ht_t ht = 0;
        bool accept = accept_event(pt, valid, words, score, ht);
        std::fprintf(out, "%d %lld %lld\\n", (int)accept, (long long)ht.to_uint64(), score);
""")


def random_event_words(seed, spec: EventInputSpec, n_events: int, rng_seed: int = 0) -> tuple[SeedJets, np.ndarray]:
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
    slot_words = np.zeros((n_events, spec.n_jets, len(spec.jet_features)), dtype=np.int64)
    for f, branch in enumerate(spec.jet_features):
        if branch == "Jet_pt":
            slot_words[:, :, f] = pt[:, :spec.n_jets]
            continue
        fmt = spec.formats[branch]
        lo, hi = feature_code_range(fmt.bits, fmt.signed)
        if branch == "Jet_phi":
            lo, hi = max(lo, -720), min(hi, 720)
        pick = rng.random((n_events, spec.n_jets))
        edge = np.where(rng.random((n_events, spec.n_jets)) < 0.5, lo, hi)
        slot_words[:, :, f] = np.where(pick < 0.3, edge, rng.integers(lo, hi + 1, (n_events, spec.n_jets)))
    slot_words = np.where(valid[:, :spec.n_jets, None], slot_words, 0)
    return jets, slot_words


def python_event_decisions(seed, jets: SeedJets, slot_words: np.ndarray, spec, preprocessor, network) -> np.ndarray:
    """Per event [accept, HT, score code] from the Python chain (builder words → codes → exact network → seed)."""
    codes, _ = codes_from_words(slot_words, jets, spec)
    score = network.forward_codes(preprocessor.transform(codes)).reshape(len(codes), -1)[:, 0].astype(np.int64)
    accept = seed.fires(jets.with_event_score(score))
    return np.column_stack([accept, jets.ht, score]).astype(np.int64)


def check_event_seed_csim(hls_dir, project: str, seed, spec: EventInputSpec, preprocessor, network,
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
    header.write_text(_header(project, seed, spec, list(preprocessor.shifts), network.output_type))
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
        lines = [str(len(counts))]
        for row in range(len(counts)):
            n = int(counts[row])
            m = min(n, spec.n_jets)
            lines.append(" ".join([str(n), *map(str, jets.pt[row, :n].tolist()),
                                   *map(str, words[row, :m].ravel().tolist())]))
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
