"""Physics-generated jet samples in the NanoAOD schema: Pythia 8 + FastJet -> ROOT files.

:func:`generate_sample` is the entry point (CLI: ``qtrigger data generate``). Events are
generated in seeded chunks (chunk ``k`` of pTHat bin ``b``: Pythia seed ``seed * 10**6 +
b * 10**4 + k``) run as tasks on dask.distributed, so a sample is identical on any number of
workers; parts are merged in chunk order and renamed into place only when every bin is
complete. Physics definitions, pTHat bins, the ``Runs`` tree and measured costs:
docs/generation.md. Submodules: ``options`` (checks), ``events`` (Pythia, particles), ``jets``,
``tracks``, ``chunk`` (one chunk's events), ``pileup`` (overlays), ``library`` (the premixed pileup
library, :func:`generate_library`), ``mitigation``, ``l1objects`` (L1-like objects, ``l1_objects=True``),
``tasks`` (dask), ``output`` (ROOT).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.data.samples import combine_same_bin
from qtrigger.errors import QTriggerError
from qtrigger.generate.chunk import _count, _generate_part, _runs_entry  # noqa: F401
from qtrigger.generate.events import (  # noqa: F401  (PROCESSES and the physics helpers are public here)
    PROCESSES,
    ChargeTable,
    applied_pthat_min,
    hard_inputs,
    import_generators,
    make_pythia,
    next_batch,
    pileup_batch_size,
    pileup_inputs,
    process_settings,
)
from qtrigger.generate.jets import jet_table, merge_inputs, to_awkward  # noqa: F401
from qtrigger.generate.library import (  # noqa: F401
    DEFAULT_MAX_REUSE,
    check_library_use,
    generate_library,
    library_hash,
    plan_draws,
)
from qtrigger.generate.options import (  # noqa: F401
    BIN_STRIDE,
    check_jet_seed,
    check_mitigation,
    DEFAULT_CHUNK_SIZE,
    MAX_BINS,
    MAX_PILEUP,
    PILEUP_SEED_OFFSET,
    SEED_MAX,
    SEED_STRIDE,
    _check_cuts,
    _check_outputs,
    _check_pthat_min,
    _validate,
)
from qtrigger.generate.output import (  # noqa: F401
    CAND_FIELDS,
    EVENT_FIELDS,
    GENERATED_MARK,
    JET_FIELDS,
    L1_FIELDS,
    OUTPUT_COMPRESSION,
    PART_COMPRESSION,
    PILEUP_FIELDS,
    RUNS_FIELDS,
    is_generated_file,
    open_output,
    write_runs,
)
from qtrigger.generate.l1objects import L1Settings
from qtrigger.generate.pileup import pileup_counts
from qtrigger.generate.tasks import run_tasks
from qtrigger.generate.tracks import Resolution, TrackRandom  # noqa: F401

# --------------------------------------------------------------------------- bins, chunks, seeds


def parse_pthat_bins(edges: str | list[float]) -> list[tuple[float, float]]:
    """``"15,30,50"`` (or ``[15, 30, 50]``) -> ``[(15, 30), (30, 50), (50, inf)]``: bins [min, max), last open."""
    try:
        values = [float(x) for x in (edges.split(",") if isinstance(edges, str) else edges)]
    except ValueError:
        raise QTriggerError(f"--pthat-bins must be comma-separated numbers in GeV, got {edges!r}") from None
    if not values or not all(math.isfinite(v) and v >= 0 for v in values) or any(
            b <= a for a, b in zip(values, values[1:])):
        raise QTriggerError(f"--pthat-bins must be increasing finite edges >= 0 GeV, got {edges!r}")
    if len(values) > MAX_BINS:
        raise QTriggerError(f"--pthat-bins: at most {MAX_BINS} bins, got {len(values)}")
    return list(zip(values, values[1:] + [math.inf]))


def chunk_seed(seed: int, bin_index: int, chunk_index: int) -> int:
    """Pythia seed of one chunk: ``seed * 1,000,000 + bin_index * 10,000 + chunk_index``."""
    return seed * SEED_STRIDE + bin_index * BIN_STRIDE + chunk_index


@dataclass(frozen=True)
class Chunk:
    """One task: ``n_events`` events of one pTHat bin with their own Pythia seed."""

    bin_index: int
    index: int
    n_events: int
    pythia_seed: int
    first_event: int  # event number of its first event in the bin's file (1-based)


def plan_chunks(events_per_bin: list[int], seed: int, chunk_size: int, jobs: int | None = None) -> list[Chunk]:
    """Chunks in merge order: per bin, consecutive chunks of ``chunk_size`` events (the last may be
    smaller) seeded by :func:`chunk_seed`; ``jobs = K`` (legacy, one bin) is K near-equal chunks
    seeded ``seed`` (K = 1) or ``seed * 1000 + k``, as samples made before chunking were."""
    if jobs is not None:
        sizes = [events_per_bin[0] // jobs + (1 if k < events_per_bin[0] % jobs else 0) for k in range(jobs)]
        starts = np.concatenate([[1], 1 + np.cumsum(sizes)[:-1]]).tolist()
        return [Chunk(0, k, sizes[k], seed if jobs == 1 else seed * 1000 + k, int(starts[k]))
                for k in range(jobs) if sizes[k] > 0]
    chunks = []
    for b, n in enumerate(events_per_bin):
        for k, first in enumerate(range(0, n, chunk_size)):
            chunks.append(Chunk(b, k, min(chunk_size, n - first), chunk_seed(seed, b, k), first + 1))
    return chunks


def bin_outputs(output: str | os.PathLike, process: str, bins: list[tuple[float, float]] | None) -> list[Path]:
    """Output files: ``output`` itself without bins; with bins, one file per bin named
    ``<process>_pthat<min>to<max|Inf>.root`` in the directory ``output``, or
    ``<prefix>_pthat<min>to<max|Inf>.root`` when ``output`` is a prefix (a ``.root`` suffix is dropped)."""
    if bins is None:
        return [Path(output)]
    out = Path(output)
    if out.is_dir() or str(output).endswith(("/", os.sep)):
        directory, stem = out, process
    else:
        directory, stem = out.parent, out.name.removesuffix(".root")
    return [directory / f"{stem}_pthat{lo:g}to{'Inf' if math.isinf(hi) else f'{hi:g}'}.root" for lo, hi in bins]


# --------------------------------------------------------------------------- running chunks


def _run_chunks(specs: list[dict], workers: int, scheduler, progress: bool) -> list[dict]:
    """Run every chunk spec (in this process when ``workers == 0`` and no scheduler); results in spec order."""
    return run_tasks(_generate_part, specs, workers, scheduler, progress)


def _merge_parts(parts: list[Path], target: Path, runs: dict, step: int = 20000) -> None:
    """Concatenate part files, in order, into ``target`` (LZMA) with one ``Runs`` entry."""
    import awkward as ak
    import uproot

    with uproot.open(parts[0]) as first:
        candidates = "JetCand_pt" in first["Events"].keys()
        pileup = "Pileup_nInt" in first["Events"].keys()
        l1 = "L1Jet_pt" in first["Events"].keys()
    file, events_tree, runs_tree = open_output(target, OUTPUT_COMPRESSION, candidates, pileup, l1)
    scalars = [*EVENT_FIELDS, *(PILEUP_FIELDS if pileup else ())]
    with file:
        for part in parts:
            with uproot.open(part) as f:
                for chunk in f["Events"].iterate(step_size=step, library="ak"):
                    jets = ak.zip({k: chunk[f"Jet_{k}"] for k in JET_FIELDS})
                    out = {**{k: chunk[k] for k in scalars}, "Jet": jets}
                    if "JetCand_pt" in chunk.fields:
                        out["JetCand"] = ak.zip({k: chunk[f"JetCand_{k}"] for k in CAND_FIELDS})
                    for name, fields in (L1_FIELDS.items() if l1 else ()):
                        out[name] = ak.zip({k: chunk[f"{name}_{k}"] for k in fields})
                    events_tree.extend(out)
        write_runs(runs_tree, runs)


def combine_runs(runs: list[dict]) -> dict:
    """Deprecated alias of :func:`qtrigger.data.samples.combine_same_bin` (files of one bin)."""
    return combine_same_bin(runs)


# --------------------------------------------------------------------------- public API


def generate_sample(
    process: str,
    n_events: int | list[int],
    seed: int,
    output: str | os.PathLike,
    pthat_min: float = 30.0,
    jobs: int | None = None,
    pileup: float = 0.0,
    jet_pt_min: float = 20.0,
    jet_eta_max: float = 2.5,
    batch_size: int = 500,
    bias_pow: float | None = None,
    progress: bool = True,
    overwrite: bool = False,
    pthat_bins: str | list[float] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    scheduler=None,
    d0_resolution_um: float | None = None,
    z0_resolution_um: float | None = None,
    candidates: bool = True,
    pileup_library: str | os.PathLike | None = None,
    pileup_max_reuse: int = DEFAULT_MAX_REUSE,
    mitigation: str = "auto",
    l1_objects: bool | L1Settings = False,
    jet_seed_gev: float | None = None,
) -> dict:
    """Generate ``n_events`` events of ``process`` and write NanoAOD-schema jets to ``output``.

    See the module docstring for the physics content, pTHat bins, seeds, Dask and the schema.
    ``pthat_bins`` (edges, last bin open; qcd/wjets) writes one file per bin (:func:`bin_outputs`),
    ``n_events`` events in each (or a list, one count per bin); ``pthat_min`` is then unused.
    ``d0_resolution_um``/``z0_resolution_um``: fixed L1-track impact-parameter resolutions
    (um); None (default) = the pT-dependent ones (docs/generation.md, recorded as -1 in ``Runs``).
    ``pileup``: mean inelastic interactions overlaid per event (``minbias``: a zero-bias crossing of
    Poisson(mu) interactions), from a second Pythia or, with ``pileup_library`` (a folder made by
    :func:`generate_library`), drawn from the library, each library interaction at most
    ``pileup_max_reuse`` times over the sample.
    ``mitigation`` (with pileup): ``none``, ``run3``, ``phase2`` or ``auto`` (none at mu = 0, run3 below
    mu = 140, phase2 from it); :mod:`qtrigger.generate.mitigation`. ``jet_seed_gev``: the mitigated jets' seed
    threshold (default: the scheme's, ``mitigation.JET_SEED_GEV``), recorded in ``Runs/jetSeedGeV``.
    ``l1_objects`` (True, or :class:`~qtrigger.generate.l1objects.L1Settings` for another response) adds the
    ``L1Jet``, ``L1EG``, ``L1Tau``, ``L1Mu`` and ``L1EtSum`` collections in CMSSW's L1 NanoAOD schema; every other branch stays
    bit-identical (:mod:`qtrigger.generate.l1objects`).
    ``candidates=False`` leaves out the ``JetCand_*`` collection (the per-jet displaced-track
    summaries, ``PV_z`` and every other branch are unchanged): about a third of the bytes per jet.
    ``workers``: LocalCluster size (default: the cores, at most the number of chunks; 0 runs in
    this process without Dask); ``scheduler``: an existing cluster's address, Client or cluster.
    Raises :class:`QTriggerError` for bad inputs, an existing output without ``overwrite``, or
    missing generator packages, before anything is generated.

    Returns a summary: ``events``, ``jets``, ``jets_per_flavour`` ({0, 4, 5} -> count),
    ``xsec_mb``/``xsec_err_mb`` (stitched over bins), ``sumw``, ``sumw2``, ``seconds``,
    ``jets_per_s``, ``output`` (the file, or the first bin's), ``outputs``, ``chunks``,
    ``workers`` (0: in this process; None: an existing cluster) and ``bins`` (per output file: ``output``, ``pthat_min``, ``pthat_max``,
    ``events``, ``jets``, ``xsec_mb``, ``xsec_err_mb``, ``sumw``, ``sumw2``, ``chunk_seconds``
    and ``chunk_cpu_seconds``: wall and CPU time summed over the bin's chunks).
    """
    bins = None if pthat_bins is None else parse_pthat_bins(pthat_bins)
    counts = [int(n) for n in (n_events if isinstance(n_events, (list, tuple)) else [n_events])]
    _validate(process, counts, seed, jobs, pileup, bias_pow, batch_size, jet_pt_min, jet_eta_max,
              bins, chunk_size, workers, d0_resolution_um, z0_resolution_um)
    if bins is None:
        _check_pthat_min(process, pthat_min)
        bins = [(applied_pthat_min(process, pthat_min), math.inf)]
    elif len(counts) == 1:
        counts = counts * len(bins)
    outputs = bin_outputs(output, process, None if pthat_bins is None else bins)
    _check_outputs(outputs, overwrite)
    library = check_library_use(pileup_library, pileup, jet_eta_max, pileup_max_reuse)
    mitigation = check_mitigation(mitigation, pileup)
    check_jet_seed(jet_seed_gev, pileup)
    l1 = _l1_spec(l1_objects)
    import_generators()

    chunks = plan_chunks(counts, int(seed), int(chunk_size), jobs)
    overlay = _plan_overlay(library, pileup_library, chunks, pileup, pileup_max_reuse, seed, process)
    if scheduler is not None:
        workers = None  # the cluster's own
    elif workers is None:
        workers = 0 if len(chunks) == 1 else min(os.cpu_count() or 1, len(chunks))
    t0 = time.perf_counter()
    token = f"{os.getpid()}-{time.time_ns()}"
    parts_dir = outputs[0].parent.resolve() / f".{outputs[0].stem}.parts-{token}"  # absolute: remote workers
    tmps = [p.with_name(f".{p.name}.tmp{token}") for p in outputs]
    try:
        parts_dir.mkdir()
        specs = [_chunk_spec(process, bins[c.bin_index], c, parts_dir, pthat_bins is None, pthat_min, bias_pow,
                             pileup, jet_pt_min, jet_eta_max, batch_size, seed, d0_resolution_um, z0_resolution_um,
                             candidates) | overlay[k] | {"mitigation": mitigation, "l1_objects": l1,
                                            "jet_seed_gev": jet_seed_gev}
                 for k, c in enumerate(chunks)]
        results = _run_chunks(specs, workers, scheduler, progress)
        per_bin = []
        for b, tmp in enumerate(tmps):
            mine = [k for k, c in enumerate(chunks) if c.bin_index == b]
            runs = combine_same_bin([results[k]["runs"] for k in mine])
            runs["seed"] = int(seed)
            _merge_parts([Path(specs[k]["path"]) for k in mine], tmp, runs)
            per_bin.append(_bin_summary(outputs[b], bins[b], [results[k] for k in mine], runs))
        for tmp, out in zip(tmps, outputs):  # all bins complete: only now replace the outputs
            os.replace(tmp, out)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(parts_dir, ignore_errors=True)
    summary = _summary(per_bin, outputs, len(chunks), workers, time.perf_counter() - t0)
    first_runs = results[0]["runs"]
    summary["pileup"] = {"mu": float(pileup), "sigma_inel_mb": first_runs["sigmaInel_mb"],
                         "library": None if pileup_library is None else str(pileup_library),
                         "reuse_mean": first_runs["pileupReuse"], "reuse_max": first_runs["pileupMaxReuse"],
                         "mitigation": mitigation}
    return summary


def _l1_spec(l1_objects) -> dict | None:
    """The chunk spec's L1 settings: None (no L1 objects), the defaults for True, or the given settings."""
    if l1_objects is False or l1_objects is None:
        return None
    settings = L1Settings() if l1_objects is True else l1_objects
    if not isinstance(settings, L1Settings):
        raise QTriggerError(f"l1_objects must be True, False or an L1Settings, got {l1_objects!r}")
    terms = {"jet response": settings.jet_response, "jet resolution S": settings.jet_stochastic,
             "jet resolution C": settings.jet_constant}
    bad = [f"{name} {value}" for name, value in terms.items() if not (math.isfinite(value) and value >= 0)]
    if bad or settings.jet_response <= 0:
        raise QTriggerError("L1 objects need a finite jet response > 0 and finite resolution terms >= 0, got "
                            + ", ".join(bad or [f"jet response {settings.jet_response}"]))
    return settings.as_dict()


def _plan_overlay(manifest, directory, chunks: list[Chunk], mu, max_reuse, seed, process) -> list[dict]:
    """Per chunk, the library keys of its spec (none without a library): where its draws start in the sample's
    draw sequence, the library's hash and sigma_inel, and the sample's reuse (refused above ``max_reuse``)."""

    if manifest is None:
        return [{} for _ in chunks]
    totals = [int(pileup_counts(c.pythia_seed, mu, c.n_events).sum()) for c in chunks]
    offsets, reuse = plan_draws(totals, manifest["interactions"], int(max_reuse), directory)
    common = {"library": str(Path(directory).resolve()), "library_hash": library_hash(manifest),
              "sigma_inel_mb": manifest["sigma_inel_mb"], "reuse_mean": reuse["mean"], "reuse_max": reuse["max"],
              "process_tag": PROCESSES.index(process)}
    return [{**common, "draw_offset": offset} for offset in offsets]


def _chunk_spec(process, pthat_range, chunk: Chunk, parts_dir: Path, unbinned: bool, pthat_min, bias_pow,
                pileup, jet_pt_min, jet_eta_max, batch_size, seed, d0_resolution_um=None, z0_resolution_um=None,
                candidates=True) -> dict:
    lo, hi = pthat_range
    settings = process_settings(process, pthat_min if unbinned else lo, bias_pow,
                                pthat_max=None if math.isinf(hi) else hi)
    return {
        "process": process, "settings": settings, "pthat_min": lo, "pthat_max": hi,
        "pileup": float(pileup), "jet_pt_min": float(jet_pt_min), "jet_eta_max": float(jet_eta_max),
        "batch_size": int(batch_size), "base_seed": int(seed), "n_events": chunk.n_events,
        "pythia_seed": chunk.pythia_seed, "event_start": chunk.first_event,
        "path": str(parts_dir / f"bin{chunk.bin_index}_chunk{chunk.index}.root"), "compression": PART_COMPRESSION,
        "d0_resolution_um": None if d0_resolution_um is None else float(d0_resolution_um),
        "z0_resolution_um": None if z0_resolution_um is None else float(z0_resolution_um),
        "candidates": bool(candidates),
    }


def _bin_summary(output: Path, pthat_range, results: list[dict], runs: dict) -> dict:
    return {
        "output": str(output), "pthat_min": pthat_range[0], "pthat_max": pthat_range[1],
        "events": sum(r["events"] for r in results), "jets": sum(r["jets"] for r in results),
        "jets_per_flavour": {f: sum(r["flavour"][f] for r in results) for f in (0, 4, 5)},
        "xsec_mb": runs["genXsec_mb"], "xsec_err_mb": runs["genXsecErr_mb"],
        "sumw": runs["genEventSumw"], "sumw2": runs["genEventSumw2"],
        "chunk_seconds": sum(r["seconds"] for r in results),
        "chunk_cpu_seconds": sum(r["cpu_seconds"] for r in results),
    }


def _summary(per_bin: list[dict], outputs: list[Path], n_chunks: int, workers: int, seconds: float) -> dict:
    jets = sum(b["jets"] for b in per_bin)
    return {
        "output": str(outputs[0]),
        "outputs": [str(p) for p in outputs],
        "events": sum(b["events"] for b in per_bin),
        "jets": jets,
        "jets_per_flavour": {f: sum(b["jets_per_flavour"][f] for b in per_bin) for f in (0, 4, 5)},
        "xsec_mb": sum(b["xsec_mb"] for b in per_bin),
        "xsec_err_mb": math.sqrt(sum(b["xsec_err_mb"] ** 2 for b in per_bin)),
        "sumw": sum(b["sumw"] for b in per_bin),
        "sumw2": sum(b["sumw2"] for b in per_bin),
        "seconds": seconds,
        "jets_per_s": jets / seconds if seconds > 0 else float("nan"),
        "chunks": n_chunks,
        "workers": workers,
        "bins": per_bin,
    }
