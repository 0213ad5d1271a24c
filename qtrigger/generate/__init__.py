"""Physics-generated jet samples in the NanoAOD schema: Pythia 8 + FastJet -> ROOT files.

:func:`generate_sample` is the entry point (CLI: ``qtrigger data generate``). Events are
generated in seeded chunks (chunk ``k`` of pTHat bin ``b``: Pythia seed ``seed * 10**6 +
b * 10**4 + k``) run as tasks on dask.distributed, so a sample is identical on any number of
workers; parts are merged in chunk order and renamed into place only when every bin is
complete. Physics definitions, pTHat bins, the ``Runs`` tree and measured costs:
docs/generation.md. Submodules: ``events`` (Pythia, particles, jets), ``output`` (ROOT).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qtrigger.data.samples import combine_same_bin
from qtrigger.errors import QTriggerError
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
from qtrigger.generate.options import (  # noqa: F401
    BIN_STRIDE,
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
    OUTPUT_COMPRESSION,
    PART_COMPRESSION,
    RUNS_FIELDS,
    is_generated_file,
    open_output,
    write_runs,
)
from qtrigger.generate.tracks import Resolution, TrackRandom  # noqa: F401
from qtrigger.runtime import dask_client

# --------------------------------------------------------------------------- one chunk


def _generate_part(spec: dict) -> dict:
    """Generate ``spec['n_events']`` events into ``spec['path']`` (runs in a Dask worker).

    Returns the counts, the ``Runs`` entry written and the seconds taken. ``spec['bar']``
    (in-process runs only) is a progress bar updated per batch.
    """
    import awkward as ak

    pythia8mc, fastjet = import_generators()
    t0, cpu0 = time.perf_counter(), time.process_time()
    pythia = make_pythia(pythia8mc, spec["settings"], spec["pythia_seed"])
    charges = ChargeTable(pythia.particleData)
    pu_pythia, rng = None, np.random.default_rng(spec["pythia_seed"])
    tracks = TrackRandom(spec["pythia_seed"])  # vertices and smearing: never Pythia's random stream
    resolution = Resolution(spec.get("d0_resolution_um"), spec.get("z0_resolution_um"))
    if spec["pileup"] > 0:
        pu_pythia = make_pythia(
            pythia8mc, process_settings("minbias"), spec["pythia_seed"] + PILEUP_SEED_OFFSET
        )
    counts = {"events": 0, "jets": 0, "sumw": 0.0, "sumw2": 0.0, "flavour": {0: 0, 4: 0, 5: 0}}
    file, events_tree, runs_tree = open_output(spec["path"], spec["compression"], spec.get("candidates", True))
    with file:
        done, batch_size = 0, pileup_batch_size(spec["batch_size"], spec["pileup"])
        while done < spec["n_events"]:
            n = min(batch_size, spec["n_events"] - done)
            batch = next_batch(pythia, n)
            weight = ak.to_numpy(batch["info"]["weights"][:, 0]).astype(np.float64)
            pthat = np.sqrt(ak.to_numpy(batch["info"]["pT2Hat"]).astype(np.float64))
            pv = tracks.vertices(n, "pv")
            pieces = hard_inputs(batch, charges, tracks, resolution, pv)
            if pu_pythia is not None:
                pieces += pileup_inputs(pu_pythia, rng, spec["pileup"], n, charges, tracks, resolution)
            del batch
            cols, njet, (cands, ncand) = jet_table(fastjet, merge_inputs(pieces, n), n, spec["jet_pt_min"],
                                                   spec["jet_eta_max"])
            first = spec["event_start"] + done
            events_tree.extend(
                {
                    "event": np.arange(first, first + n, dtype=np.uint64),
                    "genWeight": weight.astype(np.float32),
                    "Generator_binvar": pthat.astype(np.float32),
                    "PV_z": pv[:, 2].astype(np.float32),
                    "Jet": to_awkward(cols, njet),
                    **({"JetCand": to_awkward(cands, ncand, CAND_FIELDS)} if spec.get("candidates", True) else {}),
                }
            )
            _count(counts, n, weight, cols)
            done += n
            if spec.get("bar") is not None:
                spec["bar"].update(n)
        info = pythia.infoPython()  # a fresh object: older handles show stale sigmaGen
        runs = _runs_entry(spec, counts, info.sigmaGen(), info.sigmaErr())
        write_runs(runs_tree, runs)
    counts["runs"] = runs
    counts["seconds"] = time.perf_counter() - t0
    counts["cpu_seconds"] = time.process_time() - cpu0
    return counts


def _count(counts: dict, n: int, weight: np.ndarray, cols: dict) -> None:
    counts["events"] += n
    counts["jets"] += len(cols["pt"])
    counts["sumw"] += float(weight.sum())
    counts["sumw2"] += float((weight**2).sum())
    for flav in (0, 4, 5):
        counts["flavour"][flav] += int((cols["hadronFlavour"] == flav).sum())


def _runs_entry(spec: dict, counts: dict, xsec: float, xsec_err: float) -> dict:
    return {
        "genEventCount": counts["events"],
        "genEventSumw": counts["sumw"],
        "genEventSumw2": counts["sumw2"],
        "genXsec_mb": xsec,
        "genXsecErr_mb": xsec_err,
        "isMinBias": int(spec["process"] == "minbias"),
        "pthatMin": spec["pthat_min"],
        "pthatMax": spec["pthat_max"],
        "genFilterEff": 1.0,
        "seed": spec["base_seed"],
        **Resolution(spec.get("d0_resolution_um"), spec.get("z0_resolution_um")).runs_values(),
    }


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
    from tqdm import tqdm

    total = sum(s["n_events"] for s in specs)
    with tqdm(total=total, unit="ev", disable=not progress, desc="generate", file=sys.stderr) as bar:
        if workers == 0 and scheduler is None:
            return [_generate_part({**spec, "bar": bar}) for spec in specs]
        from distributed import as_completed

        with dask_client(workers, scheduler, "generate") as client:
            futures = [client.submit(_generate_part, spec, key=f"generate-{os.getpid()}-{i}", pure=False)
                       for i, spec in enumerate(specs)]
            try:
                for future in as_completed(futures):
                    result = future.result()  # re-raises a worker's error here
                    bar.update(result["events"])
                return [f.result() for f in futures]
            finally:
                for future in futures:
                    future.cancel()


def _merge_parts(parts: list[Path], target: Path, runs: dict, step: int = 20000) -> None:
    """Concatenate part files, in order, into ``target`` (LZMA) with one ``Runs`` entry."""
    import awkward as ak
    import uproot

    with uproot.open(parts[0]) as first:
        candidates = "JetCand_pt" in first["Events"].keys()
    file, events_tree, runs_tree = open_output(target, OUTPUT_COMPRESSION, candidates)
    with file:
        for part in parts:
            with uproot.open(part) as f:
                for chunk in f["Events"].iterate(step_size=step, library="ak"):
                    jets = ak.zip({k: chunk[f"Jet_{k}"] for k in JET_FIELDS})
                    out = {**{k: chunk[k] for k in EVENT_FIELDS}, "Jet": jets}
                    if "JetCand_pt" in chunk.fields:
                        out["JetCand"] = ak.zip({k: chunk[f"JetCand_{k}"] for k in CAND_FIELDS})
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
) -> dict:
    """Generate ``n_events`` events of ``process`` and write NanoAOD-schema jets to ``output``.

    See the module docstring for the physics content, pTHat bins, seeds, Dask and the schema.
    ``pthat_bins`` (edges, last bin open; qcd/wjets) writes one file per bin (:func:`bin_outputs`),
    ``n_events`` events in each (or a list, one count per bin); ``pthat_min`` is then unused.
    ``d0_resolution_um``/``z0_resolution_um``: fixed L1-track impact-parameter resolutions
    (um); None (default) = the pT-dependent ones (docs/generation.md, recorded as -1 in ``Runs``).
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
    import_generators()

    chunks = plan_chunks(counts, int(seed), int(chunk_size), jobs)
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
                             candidates)
                 for c in chunks]
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
    return _summary(per_bin, outputs, len(chunks), workers, time.perf_counter() - t0)


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
