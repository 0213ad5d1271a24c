"""``qtrigger data generate`` options, checked before Pythia starts: process, counts, seeds, pTHat bins,
cuts (finite, in range), pileup (bounded by :data:`MAX_PILEUP`) and the output files."""

from __future__ import annotations

import math
import os
from pathlib import Path

from qtrigger.errors import QTriggerError
from qtrigger.generate.events import PROCESSES
from qtrigger.generate.mitigation import MITIGATION_CODES, resolve_mitigation
from qtrigger.generate.output import GENERATED_MARK, is_generated_file

SEED_MAX = 450_000_000  # Pythia accepts up to 900,000,000; the upper half is for pileup
PILEUP_SEED_OFFSET = 450_000_000
SEED_STRIDE = 1_000_000  # chunk seed = seed * SEED_STRIDE + bin * BIN_STRIDE + chunk
BIN_STRIDE = 10_000
MAX_BINS = SEED_STRIDE // BIN_STRIDE
MAX_PILEUP = 400.0  # mean interactions per crossing: HL-LHC is ~200; beyond 400 one event alone takes minutes
DEFAULT_CHUNK_SIZE = 500


def _validate(process, events_per_bin, seed, jobs, pileup, bias_pow, batch_size, jet_pt_min, jet_eta_max,
              bins, chunk_size, workers, d0_resolution_um=None, z0_resolution_um=None):
    if process not in PROCESSES:
        raise QTriggerError(f"unknown process {process!r}; expected one of {', '.join(PROCESSES)}")
    if bins is not None and process not in ("qcd", "wjets"):
        raise QTriggerError(f"--pthat-bins applies to pTHat-generated processes (qcd, wjets), not {process}")
    if bins is None and len(events_per_bin) != 1:
        raise QTriggerError(f"--events gives {len(events_per_bin)} counts but no --pthat-bins; give one count")
    if bins is not None and len(events_per_bin) not in (1, len(bins)):
        raise QTriggerError(f"--events gives {len(events_per_bin)} counts for {len(bins)} pTHat bins; "
                            "give one count (each bin) or one per bin")
    if any(int(n) <= 0 for n in events_per_bin):
        raise QTriggerError(f"number of events must be > 0, got {', '.join(str(n) for n in events_per_bin)}")
    if batch_size < 1 or chunk_size < 1 or (jobs is not None and jobs < 1):
        raise QTriggerError(f"batch size, chunk size and jobs must be >= 1, got {batch_size}, {chunk_size}, {jobs}")
    if jobs is not None and bins is not None:
        raise QTriggerError("--jobs is the legacy split of one sample into K seeded parts; with --pthat-bins "
                            "use --chunk-size (seeds) and --workers (parallelism)")
    if workers is not None and workers < 0:
        raise QTriggerError(f"--workers must be >= 0 (0 = in this process), got {workers}")
    if jobs is None:
        max_seed = (SEED_MAX - SEED_STRIDE) // SEED_STRIDE
        if max(events_per_bin) > chunk_size * BIN_STRIDE:
            raise QTriggerError(f"at most {BIN_STRIDE} chunks per bin: use --chunk-size >= "
                                f"{math.ceil(max(events_per_bin) / BIN_STRIDE)}")
    else:
        max_seed = SEED_MAX - 1 if jobs == 1 else (SEED_MAX - jobs) // 1000
    if not 1 <= seed <= max_seed:
        scheme = f"jobs={jobs}" if jobs is not None else "chunked seeds"
        raise QTriggerError(f"seed must be in 1..{max_seed} for {scheme}, got {seed}")
    if not (math.isfinite(pileup) and 0 <= pileup <= MAX_PILEUP):
        raise QTriggerError(f"--pileup must be a finite mean number of interactions in 0..{MAX_PILEUP:g} "
                            f"(mu <= {MAX_PILEUP:g}), got {pileup}")
    if bias_pow is not None and process not in ("qcd", "wjets"):
        raise QTriggerError(f"--bias-pow applies to pTHat-generated processes (qcd, wjets), not {process}")
    _check_cuts(jet_pt_min, jet_eta_max, bias_pow)
    for name, value in (("--d0-resolution-um", d0_resolution_um), ("--z0-resolution-um", z0_resolution_um)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise QTriggerError(f"{name} must be a finite resolution > 0 um (omit it for the pT-dependent "
                                f"default), got {value}")


def _check_cuts(jet_pt_min, jet_eta_max, bias_pow) -> None:
    """Jet cuts and the pTHat bias power: finite numbers in range (a NaN cut would keep no jet, silently)."""
    if not (math.isfinite(jet_pt_min) and jet_pt_min >= 0):
        raise QTriggerError(f"--jet-pt-min must be a finite jet pT cut >= 0 GeV, got {jet_pt_min}")
    if not (math.isfinite(jet_eta_max) and jet_eta_max > 0):
        raise QTriggerError(f"--jet-eta-max must be a finite jet |eta| cut > 0, got {jet_eta_max}")
    if bias_pow is not None and not math.isfinite(bias_pow):
        raise QTriggerError(f"--bias-pow must be a finite power, got {bias_pow}")


def _check_pthat_min(process: str, pthat_min) -> None:
    """The pTHat cut of an unbinned qcd/wjets sample: a finite number >= 0 GeV."""
    if process in ("qcd", "wjets") and not (math.isfinite(pthat_min) and pthat_min >= 0):
        raise QTriggerError(f"--pthat-min must be a finite pTHat cut >= 0 GeV, got {pthat_min}")


def _check_outputs(outputs: list[Path], overwrite: bool) -> None:
    """Before any work: no output is a folder; an existing one is replaced only with ``overwrite`` and only when
    it is a file this generator wrote (:func:`~qtrigger.generate.output.is_generated_file`)."""
    for path in outputs:
        if path.is_dir():
            raise QTriggerError(f"output {path} is a folder; expected the path of a ROOT file to write "
                                "(with --pthat-bins, -o DIR/ writes one file per bin into DIR)")
    existing = [str(p) for p in outputs if os.path.lexists(p)]
    if existing and not overwrite:
        verb = "exists" if len(existing) == 1 else "exist"
        raise QTriggerError(f"output {', '.join(existing)} already {verb} (use --overwrite to replace it)")
    for path in existing:
        if Path(path).is_symlink() or not is_generated_file(Path(path)):
            raise QTriggerError(f"--overwrite refused: {path} is not a ROOT file written by qtrigger data generate "
                                f"(no Runs tree with {', '.join(GENERATED_MARK)}); move it away or choose another name")
    for parent in {p.parent for p in outputs}:
        if not parent.is_dir():
            raise QTriggerError(f"output directory {parent} does not exist")



def check_jet_seed(jet_seed_gev: float | None, pileup: float) -> None:
    """One line for a seed threshold that is negative or not finite, or given without pileup."""
    if jet_seed_gev is None:
        return
    if not math.isfinite(jet_seed_gev) or jet_seed_gev < 0:
        raise QTriggerError(f"--jet-seed-gev {jet_seed_gev:g} is invalid; expected a threshold >= 0 GeV")
    if pileup <= 0:
        raise QTriggerError(f"--jet-seed-gev {jet_seed_gev:g} needs pileup (--pileup MU > 0); at mu = 0 the jets have "
                            "no seed requirement")


def check_mitigation(mitigation: str, pileup: float) -> str:
    """The pileup mitigation scheme to apply (``auto`` resolved by mu); one line for an unknown name or a
    scheme other than none at mu = 0 (nothing to mitigate; a mu = 0 file stays bit-identical)."""
    if mitigation != "auto" and mitigation not in MITIGATION_CODES:
        raise QTriggerError(f"--mitigation {mitigation!r} is unknown; expected auto, {', '.join(MITIGATION_CODES)}")
    if pileup <= 0 and mitigation not in ("auto", "none"):
        raise QTriggerError(f"--mitigation {mitigation} needs pileup (--pileup MU > 0); at mu = 0 there is "
                            "nothing to mitigate")
    return resolve_mitigation(mitigation, pileup)
