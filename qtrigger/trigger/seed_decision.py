"""A menu seed's accept bit in HLS C++ (``<project>_seed.h``): the seed family's logic around the hls4ml
network's scores, written and checked bit for bit in g++ against the Python seed (:mod:`qtrigger.trigger.seeds`).

The single-threshold decision and the shared g++ harness are :mod:`qtrigger.trigger.decision`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.inputs.seed_jets import SeedJets
from qtrigger.trigger.decision import _ap_type, _check_decision_args, _run, ap_types_dir, test_driver


def _seed_header(project_name: str, seed, words, t: FixedType, n_slots: int, n_scored: int) -> str:
    guard = f"{project_name.upper()}_SEED_H_"
    bits = "ap_uint" if not t.signed else "ap_int"
    score_code = 0 if seed.score_code is None else int(np.clip(seed.score_code, t.min_code, t.max_code + 1))
    acc_bits = max(words.ht_bits, words.pt_bits) + 1
    ntag = seed.family == "ht_ntag"  # the tag counts separately: >= MIN_TAGGED of the counted jets
    use_tag = seed.tagged and not ntag
    return f"""// {project_name}_seed.h -- L1 seed accept bit (written by qtrigger.trigger.decision).
// Seed: {seed.describe(words, t.lsb)}  (family {seed.family}).
// Inputs per event: N_SLOTS jet slots (leading jets in pT order) with pT as an unsigned integer
// code in units of {words.pt_lsb_gev:g} GeV (truncated, saturated at {words.pt_max_code}), a valid flag, and the
// network score of the first N_SCORED slots. HT = sum of the valid slots' pT codes with
// pT code >= HT_JET_PT_CODE ({words.ht_jet_pt_gev:g} GeV), saturated at HT_MAX_CODE ({words.ht_bits} bits).
// A jet counts when pT code >= JET_PT_CODE and, if USE_TAG, it has a score code >= SCORE_CODE;
// a counted jet is tagged when it is scored and its score code >= SCORE_CODE (tag jets beyond
// N_SCORED never are).
// accept = (counted jets >= MIN_JETS) && (tagged jets >= MIN_TAGGED) && (!USE_HT || HT >= HT_CODE).
#ifndef {guard}
#define {guard}

#include "ap_fixed.h"
#include "ap_int.h"

namespace {project_name}_seed {{

typedef {_ap_type(t)} score_t;
typedef ap_int<{t.width + 2}> code_t;
typedef ap_uint<{words.pt_bits}> pt_t;
typedef ap_uint<{words.ht_bits}> ht_t;
typedef ap_uint<{acc_bits}> ht_acc_t;
typedef ap_uint<8> count_t;
static const int N_SLOTS = {int(n_slots)};
static const int N_SCORED = {int(n_scored)};
static const int SCORE_WIDTH = {t.width};
static const int MIN_JETS = {int(seed.n_jets)};
static const int MIN_TAGGED = {int(seed.n_tagged or 0) if ntag else 0};
static const bool USE_TAG = {'true' if use_tag else 'false'};
static const bool USE_HT = {'true' if seed.ht_code is not None else 'false'};
static const long long JET_PT_CODE = {int(seed.jet_pt_code or 0)}LL;
static const long long SCORE_CODE = {score_code}LL;
static const long long HT_CODE = {int(seed.ht_code or 0)}LL;
static const long long HT_JET_PT_CODE = {int(words.pt_code(words.ht_jet_pt_gev))}LL;
static const long long HT_MAX_CODE = {words.ht_max_code}LL;

inline code_t score_code(score_t score) {{
#pragma HLS INLINE
    ap_uint<SCORE_WIDTH> bits = score.range(SCORE_WIDTH - 1, 0);
    {bits}<SCORE_WIDTH> code = bits;
    return code_t(code);
}}

inline ht_t event_ht(pt_t pt[N_SLOTS], bool valid[N_SLOTS]) {{
#pragma HLS INLINE
    ht_t ht = 0;
seed_ht:
    for (int j = 0; j < N_SLOTS; j++) {{
#pragma HLS UNROLL
        ht_acc_t sum = ht_acc_t(ht) + ht_acc_t((valid[j] && pt[j] >= HT_JET_PT_CODE) ? pt[j] : pt_t(0));
        ht = (sum > ht_acc_t(HT_MAX_CODE)) ? ht_t(HT_MAX_CODE) : ht_t(sum);
    }}
    return ht;
}}

inline count_t counted_jets(pt_t pt[N_SLOTS], bool valid[N_SLOTS], score_t score[N_SCORED]) {{
#pragma HLS INLINE
    count_t n = 0;
seed_count:
    for (int j = 0; j < N_SLOTS; j++) {{
#pragma HLS UNROLL
        bool tag = !USE_TAG || (j < N_SCORED && score_code(score[j < N_SCORED ? j : 0]) >= code_t(SCORE_CODE));
        n += (valid[j] && pt[j] >= JET_PT_CODE && tag) ? 1 : 0;
    }}
    return n;
}}

inline count_t tagged_jets(pt_t pt[N_SLOTS], bool valid[N_SLOTS], score_t score[N_SCORED]) {{
#pragma HLS INLINE
    count_t n = 0;
seed_tag_count:
    for (int j = 0; j < N_SCORED; j++) {{
#pragma HLS UNROLL
        n += (valid[j] && pt[j] >= JET_PT_CODE && score_code(score[j]) >= code_t(SCORE_CODE)) ? 1 : 0;
    }}
    return n;
}}

inline bool accept_event(pt_t pt[N_SLOTS], bool valid[N_SLOTS], score_t score[N_SCORED]) {{
#pragma HLS INLINE
    return counted_jets(pt, valid, score) >= MIN_JETS && (MIN_TAGGED == 0 || tagged_jets(pt, valid, score) >= MIN_TAGGED)
           && (!USE_HT || event_ht(pt, valid) >= HT_CODE);
}}

}}  // namespace {project_name}_seed

#endif  // {guard}
"""


def _seed_driver(project_name: str) -> str:
    return test_driver(f"""// {project_name}_seed_test.cpp -- reads "n_events" then per event "n pt_1 score_1 .. pt_n score_n"
// (integer codes), writes per event: accept_event counted_jets tagged_jets event_ht.""", f"{project_name}_seed.h",
                       "N_SLOTS", """\
        pt_t pt[N_SLOTS];
        bool valid[N_SLOTS];
        score_t score[N_SCORED > 0 ? N_SCORED : 1];
        for (int j = 0; j < N_SLOTS; j++) {
            long long p = 0, s = 0;
            valid[j] = j < n;
            if (valid[j] && std::fscanf(in, "%lld %lld", &p, &s) != 2) return 3;
            pt[j] = valid[j] ? pt_t(p) : pt_t(0);
            if (j < N_SCORED) score[j].range(SCORE_WIDTH - 1, 0) = ap_uint<SCORE_WIDTH>(valid[j] ? s : 0);
        }
        std::fprintf(out, "%d %d %d %lld\\n", (int)accept_event(pt, valid, score), (int)counted_jets(pt, valid, score),
                     (int)tagged_jets(pt, valid, score), (long long)event_ht(pt, valid).to_uint64());
""")


def write_seed_hls(directory, project_name: str, seed, words, score_type: FixedType, n_slots: int,
                   n_scored: int) -> Path:
    """Write ``<project_name>_seed.h`` (accept bit of a menu seed) and its C++ test driver; return the header."""
    _check_decision_args(project_name, score_type, n_slots)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    header = directory / f"{project_name}_seed.h"
    header.write_text(_seed_header(project_name, seed, words, score_type, n_slots, n_scored))
    (directory / f"{project_name}_seed_test.cpp").write_text(_seed_driver(project_name))
    return header


def _python_seed_decisions(seed, jets, words, n_scored: int, score_type: FixedType) -> np.ndarray:
    """Per event [accept, counted jets, tagged jets, HT code], computed independently of :meth:`Seed.fires`."""
    n_slots = jets.pt.shape[1]
    ntag = seed.family == "ht_ntag"
    scored = np.arange(n_slots) < n_scored
    codes = np.where(jets.valid & scored, jets.score, 0)  # the driver feeds code 0 to empty slots
    tag = scored & (codes >= (seed.score_code if seed.score_code is not None else 0))
    above = jets.valid & (jets.pt >= (seed.jet_pt_code or 0))
    counted = (above & (tag if seed.tagged and not ntag else True)).sum(axis=1)
    tagged = (above & tag).sum(axis=1)
    ht_min = words.pt_code(words.ht_jet_pt_gev)
    ht = np.minimum(np.where(jets.valid & (jets.pt >= ht_min), jets.pt, 0).sum(axis=1), words.ht_max_code)
    accept = counted >= seed.n_jets
    if ntag and seed.n_tagged:
        accept &= tagged >= seed.n_tagged
    if seed.ht_code is not None:
        accept &= ht >= seed.ht_code
    return np.column_stack([accept, counted, tagged, ht]).astype(np.int64)


def random_seed_jets(seed, words, score_type: FixedType, n_slots: int, n_scored: int, n_events: int, seed_rng: int = 0):
    """Random events for the seed check: pT and score codes concentrated at the thresholds and the word limits."""
    rng = np.random.default_rng(seed_rng)
    counts = rng.integers(0, n_slots + 1, n_events)
    valid = np.arange(n_slots)[None, :] < counts[:, None]
    shape = (n_events, n_slots)

    def near(center, low, high):
        kind = rng.random(shape)
        around = np.clip(center + rng.integers(-1, 2, shape), low, high)
        return np.where(kind < 0.4, around, np.where(kind < 0.5, np.where(rng.random(shape) < 0.5, low, high),
                                                     rng.integers(low, high + 1, shape)))

    pt_center = int(seed.jet_pt_code or words.pt_code(words.ht_jet_pt_gev))
    pt = np.where(valid, near(pt_center, 0, min(words.pt_max_code, 8 * max(pt_center, 1))), 0)
    big = rng.random(n_events) < 0.05  # some events drive HT into saturation
    pt[big] = np.where(valid[big], words.pt_max_code, 0)
    center = seed.score_code if seed.score_code is not None else 0
    score = near(int(np.clip(center, score_type.min_code, score_type.max_code)), score_type.min_code,
                 score_type.max_code)
    score = np.where(valid & (np.arange(n_slots) < n_scored), score, np.iinfo(np.int64).min)
    ht_min = words.pt_code(words.ht_jet_pt_gev)
    ht = np.minimum(np.where(valid & (pt >= ht_min), pt, 0).sum(axis=1), words.ht_max_code)
    if seed.ht_code is not None:  # ~40 % of the events moved to HT = threshold - 1, + 0, + 1 via their leading jet
        delta = seed.ht_code + rng.integers(-1, 2, n_events) - ht
        lead = pt[:, 0] + delta
        move = (rng.random(n_events) < 0.4) & valid[:, 0] & (pt[:, 0] >= ht_min) & (lead >= ht_min) & \
            (lead <= words.pt_max_code) & (seed.ht_code + 1 <= words.ht_max_code)
        pt[move, 0] = lead[move]
        ht = np.minimum(np.where(valid & (pt >= ht_min), pt, 0).sum(axis=1), words.ht_max_code)
    return SeedJets(pt.astype(np.int64), score.astype(np.int64), valid, ht.astype(np.int64), n_scored)


def check_seed_csim(directory, project_name: str, seed, words, score_type: FixedType, n_slots: int, n_scored: int,
                    jets=None, n_events: int = 20_000, seed_rng: int = 0) -> dict:
    """Compile the seed's accept bit with g++ and compare accept/count/HT per event with Python.

    ``jets`` (a :class:`~qtrigger.inputs.seed_jets.SeedJets`) gives real events; random events
    concentrated at the thresholds and word limits are always added. Returns counts of events and
    disagreements (accept vs the C++, and :meth:`Seed.fires` vs the Python reference).
    """
    gxx = shutil.which("g++")
    if gxx is None:
        raise QTriggerError("g++ not found on PATH: cannot compile the HLS seed decision (install g++)")
    header = write_seed_hls(directory, project_name, seed, words, score_type, n_slots, n_scored)
    directory = header.parent
    sets = [random_seed_jets(seed, words, score_type, n_slots, n_scored, n_events, seed_rng)]
    if jets is not None:
        sets.append(jets)
    out = {"events": 0, "disagreements": 0, "python_fires_disagreements": 0}
    for k, events in enumerate(sets):
        path_in, path_out = directory / f"seed_input_{k}.txt", directory / f"seed_output_{k}.txt"
        counts = events.valid.sum(axis=1)
        lines = [f"{len(counts)}"]
        for row in range(len(counts)):
            n = int(counts[row])
            scores = np.where(np.arange(n) < n_scored, events.score[row, :n], 0)
            pairs = " ".join(f"{int(p)} {int(s)}" for p, s in zip(events.pt[row, :n], scores))
            lines.append(f"{n} {pairs}".strip())
        path_in.write_text("\n".join(lines) + "\n")
        exe = directory / f"{project_name}_seed_test"
        if k == 0:
            _run([gxx, "-std=c++11", "-O1", f"-I{ap_types_dir()}", f"-I{directory}",
                  str(directory / f"{project_name}_seed_test.cpp"), "-o", str(exe)], "compiling the seed decision")
        _run([str(exe), str(path_in), str(path_out)], "running the seed decision test")
        got = np.loadtxt(path_out, dtype=np.int64, ndmin=2).reshape(-1, 4)
        want = _python_seed_decisions(seed, events, words, n_scored, score_type)
        out["events"] += len(counts)
        out["disagreements"] += int((got != want).any(axis=1).sum())
        out["python_fires_disagreements"] += int((seed.fires(events) != want[:, 0].astype(bool)).sum())
    return out
