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
