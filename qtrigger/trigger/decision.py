"""The accept bit in HLS C++ (``<project>_decision.h``) and its bit-exact g++ check against Python."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.fixedpoint import FixedType
from qtrigger.inputs.seed_jets import _check_jets


def ap_types_dir() -> Path:
    """The ``ap_types`` headers shipped inside hls4ml (found without importing hls4ml)."""
    import importlib.util

    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise QTriggerError("hls4ml is not installed: its ap_types headers are needed to compile the decision")
    path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_fixed.h").is_file():
        raise QTriggerError(f"{path}: ap_fixed.h not found in the hls4ml installation")
    return path


def _ap_type(t: FixedType) -> str:
    return f"ap_{'' if t.signed else 'u'}fixed<{t.width}, {t.integer}, AP_{t.rounding}, AP_{t.saturation}>"


def _check_decision_args(project_name: str, output_type: FixedType, jets_per_event: int) -> None:
    if not re.fullmatch(r"[A-Za-z_]\w*", project_name):
        raise ValueError(f"project_name must be a C identifier, got {project_name!r}")
    if output_type.width > 60:
        raise ValueError(f"score type {output_type} is wider than 60 bits")
    if int(jets_per_event) < 1:
        raise ValueError(f"jets_per_event must be >= 1, got {jets_per_event}")


def _decision_header(project_name: str, t: FixedType, threshold_code: int, n_jets: int) -> str:
    code = int(np.clip(threshold_code, t.min_code, t.max_code + 1))  # same decisions for every code
    bits = "ap_uint" if not t.signed else "ap_int"
    guard = f"{project_name.upper()}_DECISION_H_"
    return f"""// {project_name}_decision.h -- L1 trigger decision on the network score (written by qtrigger.trigger).
// A jet is accepted when score >= threshold, compared exactly on the integer code (score / LSB):
// code >= THRESHOLD_CODE = {code} (threshold value {code * t.lsb!r}). An event is accepted when any
// of its N_JETS jets is accepted (OR, fully unrolled). Empty jet slots should carry SCORE_MIN_CODE
// (or use the overload with a valid mask).
#ifndef {guard}
#define {guard}

#include "ap_fixed.h"
#include "ap_int.h"

namespace {project_name}_decision {{

typedef {_ap_type(t)} score_t;
typedef ap_int<{t.width + 2}> code_t;  // holds every code and max code + 1 (never accept)
static const int N_JETS = {int(n_jets)};
static const int SCORE_WIDTH = {t.width};
static const long long SCORE_MIN_CODE = {t.min_code}LL;
static const long long THRESHOLD_CODE = {code}LL;

// The integer code of a score: its {t.width} bits read as a {'signed' if t.signed else 'unsigned'} integer.
inline code_t score_code(score_t score) {{
#pragma HLS INLINE
    ap_uint<SCORE_WIDTH> bits = score.range(SCORE_WIDTH - 1, 0);
    {bits}<SCORE_WIDTH> code = bits;
    return code_t(code);
}}

inline bool accept_jet(score_t score) {{
#pragma HLS INLINE
    return score_code(score) >= code_t(THRESHOLD_CODE);
}}

inline bool accept_event(score_t scores[N_JETS]) {{
#pragma HLS INLINE
    bool accept = false;
accept_event_jets:
    for (int j = 0; j < N_JETS; j++) {{
#pragma HLS UNROLL
        accept = accept | accept_jet(scores[j]);
    }}
    return accept;
}}

inline bool accept_event(score_t scores[N_JETS], bool valid[N_JETS]) {{
#pragma HLS INLINE
    bool accept = false;
accept_event_valid_jets:
    for (int j = 0; j < N_JETS; j++) {{
#pragma HLS UNROLL
        accept = accept | (valid[j] & accept_jet(scores[j]));
    }}
    return accept;
}}

}}  // namespace {project_name}_decision

#endif  // {guard}
"""


def test_driver(comment: str, header: str, max_jets: str, event_body: str) -> str:
    """The g++ test driver of a decision header: ``main(input, output)``.

    Reads ``n_events``, then per event ``n`` (checked against ``max_jets``, a constant of the
    header) and whatever ``event_body`` (C++ statements, 8-space indented) reads; ``event_body``
    writes the event's output line. ``comment``: the file's description, one ``//`` line each.
    """
    namespace = header.removesuffix(".h")
    return f"""{comment}
#include <cstdio>
#include "{header}"
using namespace {namespace};

int main(int argc, char **argv) {{
    if (argc != 3) {{ std::fprintf(stderr, "usage: %s input output\\n", argv[0]); return 2; }}
    std::FILE *in = std::fopen(argv[1], "r"), *out = std::fopen(argv[2], "w");
    if (!in || !out) return 2;
    long n_events = 0;
    if (std::fscanf(in, "%ld", &n_events) != 1) return 3;
    for (long e = 0; e < n_events; e++) {{
        int n = 0;
        if (std::fscanf(in, "%d", &n) != 1 || n < 0 || n > {max_jets}) return 3;
{event_body}    }}
    std::fclose(in);
    std::fclose(out);
    return 0;
}}
"""


def _decision_driver(project_name: str) -> str:
    return test_driver(f"""// {project_name}_decision_test.cpp -- reads "n_events" then per event "n code_1 .. code_n" (raw
// integer codes), writes per event: accept_event(scores, valid) accept_event(padded scores) n_accepted_jets.""", f"{project_name}_decision.h", "N_JETS", """\
        score_t scores[N_JETS];
        bool valid[N_JETS];
        int n_accepted = 0;
        for (int j = 0; j < N_JETS; j++) {
            long long code = SCORE_MIN_CODE;
            valid[j] = j < n;
            if (valid[j] && std::fscanf(in, "%lld", &code) != 1) return 3;
            scores[j].range(SCORE_WIDTH - 1, 0) = ap_uint<SCORE_WIDTH>(code);
            n_accepted += (valid[j] && accept_jet(scores[j])) ? 1 : 0;
        }
        std::fprintf(out, "%d %d %d\\n", (int)accept_event(scores, valid), (int)accept_event(scores), n_accepted);
""")


def write_decision_hls(directory, project_name: str, output_type: FixedType, threshold_code: int,
                       jets_per_event: int) -> Path:
    """Write ``<project_name>_decision.h`` (score_t, accept_jet, accept_event) and its C++ test driver.

    Codes outside the type are clipped to ``[min_code, max_code + 1]`` (same decisions).
    Returns the header path; the driver is ``<project_name>_decision_test.cpp`` next to it.
    """
    _check_decision_args(project_name, output_type, jets_per_event)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    header = directory / f"{project_name}_decision.h"
    header.write_text(_decision_header(project_name, output_type, int(threshold_code), int(jets_per_event)))
    (directory / f"{project_name}_decision_test.cpp").write_text(_decision_driver(project_name))
    return header


def random_decision_events(output_type: FixedType, threshold_code: int, jets_per_event: int, n_events: int,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(jet_codes, jet_event) of random events: 0..N jets each, ~40% of codes at threshold-1/+0/+1,
    ~10% at the type's limits, the rest uniform over the type."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, jets_per_event + 1, n_events)
    jet_event = np.repeat(np.arange(n_events), counts)
    n = len(jet_event)
    lo, hi = output_type.min_code, output_type.max_code
    near = np.clip(threshold_code + rng.integers(-1, 2, n), lo, hi)
    limits = np.where(rng.random(n) < 0.5, lo, hi)
    kind = rng.random(n)
    codes = np.where(kind < 0.4, near, np.where(kind < 0.5, limits, rng.integers(lo, hi + 1, n)))
    return codes.astype(np.int64), jet_event


def _write_decision_input(path: Path, jet_codes: np.ndarray, jet_event: np.ndarray, n_events: int) -> None:
    order = np.argsort(jet_event, kind="stable")
    counts = np.bincount(jet_event, minlength=n_events)
    per_event = np.split(jet_codes[order], np.cumsum(counts)[:-1])
    lines = [" ".join(map(str, [len(c), *c.tolist()])) for c in per_event]
    path.write_text(f"{n_events}\n" + "\n".join(lines) + "\n")


def check_decision_csim(
    directory,
    project_name: str,
    output_type: FixedType,
    threshold_code: int,
    jets_per_event: int,
    n_events: int = 10_000,
    seed: int = 0,
    jet_codes: np.ndarray | None = None,
    jet_event: np.ndarray | None = None,
) -> int:
    """Compile the decision with g++ against hls4ml's ap_types and count disagreements with Python.

    Events are random (:func:`random_decision_events`) unless ``jet_codes``/``jet_event`` are
    given (events with more than ``jets_per_event`` jets then keep their first jets). An event
    disagrees when any of accept_event(valid mask), accept_event(padded) or its number of
    accepted jets differs from Python. Returns the number of disagreeing events (0 = exact).
    """
    gxx = shutil.which("g++")
    if gxx is None:
        raise QTriggerError("g++ not found on PATH: cannot compile the HLS decision (install g++)")
    header = write_decision_hls(directory, project_name, output_type, threshold_code, jets_per_event)
    directory = header.parent
    if jet_codes is None:
        jet_codes, jet_event = random_decision_events(output_type, threshold_code, jets_per_event, n_events, seed)
    jet_codes, jet_event, n_events = _first_jets(jet_codes, jet_event, n_events, jets_per_event, output_type)
    _write_decision_input(directory / "decision_input.txt", jet_codes, jet_event, n_events)
    exe = directory / f"{project_name}_decision_test"
    _run([gxx, "-std=c++11", "-O1", f"-I{ap_types_dir()}", f"-I{directory}",
          str(directory / f"{project_name}_decision_test.cpp"), "-o", str(exe)], "compiling the decision")
    _run([str(exe), str(directory / "decision_input.txt"), str(directory / "decision_output.txt")],
         "running the decision test")
    got = np.loadtxt(directory / "decision_output.txt", dtype=np.int64, ndmin=2).reshape(-1, 3)
    return int((got != _python_decisions(jet_codes, jet_event, n_events, threshold_code,
                                          jets_per_event, output_type)).any(axis=1).sum())


def _first_jets(jet_codes, jet_event, n_events, jets_per_event, output_type):
    """Validated codes, keeping at most ``jets_per_event`` jets per event (in the given order)."""
    jet_codes = np.asarray(jet_codes, dtype=np.int64)
    jet_event = _check_jets(jet_event, int(n_events), jet_codes)
    if len(jet_codes) and (jet_codes.min() < output_type.min_code or jet_codes.max() > output_type.max_code):
        raise ValueError(f"jet codes outside [{output_type.min_code}, {output_type.max_code}] of {output_type}")
    order = np.argsort(jet_event, kind="stable")
    counts = np.bincount(jet_event, minlength=n_events)
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = np.zeros(len(jet_codes), bool)
    keep[order[rank < jets_per_event]] = True
    return jet_codes[keep], jet_event[keep], int(n_events)


def _python_decisions(jet_codes, jet_event, n_events, threshold_code, jets_per_event, output_type) -> np.ndarray:
    """Per event: [fires with valid mask, fires with padded slots, number of accepted jets]."""
    passed = jet_codes >= threshold_code
    n_accepted = np.bincount(jet_event[passed], minlength=n_events)
    padded_slot_fires = output_type.min_code >= threshold_code
    has_padding = np.bincount(jet_event, minlength=n_events) < jets_per_event
    return np.column_stack([n_accepted >= 1, (n_accepted >= 1) | (has_padding & padded_slot_fires), n_accepted])


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[0]
        raise QTriggerError(f"{what} failed: {first}")


# --------------------------------------------------------------------------- menu seed decision


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
    from qtrigger.inputs.seed_jets import SeedJets

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
