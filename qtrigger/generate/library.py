"""A premixed pileup library: inelastic interactions generated once, overlaid on many events.

``qtrigger data generate --process minbias --library N -o lib/`` (:func:`generate_library`) cuts N
interactions into chunks of ``chunk_size``; chunk ``k`` uses Pythia ``SoftQCD:inelastic`` seeded
``chunk_seed(seed, 0, k)`` and is written, atomically, to ``lib/chunk_<k>.npz``. A chunk file that
exists with the same seed and size is kept, so a stopped production resumes where it stopped;
``lib/library.json`` (the manifest: seed, size, sigma_inel, chunk files and their SHA-256) appears
when every chunk is there. Each interaction stores its visible particles with |eta| < 3
(momenta, PDG id, kind, charge) and the straight-line track parameters of its charged ones
relative to its own vertex (d0, z0 from Pythia's production points; unsmeared), plus its pTHat.

Drawing (:func:`plan_draws`): the events of one sample take consecutive positions of one seeded
sequence of library permutations, so every interaction is used floor or ceil(draws / size) times;
more than ``max_reuse`` is refused before anything runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.generate.events import (
    ChargeTable,
    _visible,
    _visible_kind,
    import_generators,
    make_pythia,
    pileup_particles,
    pileup_settings,
    sigma_inel_mb,
)
from qtrigger.generate.options import SEED_MAX, SEED_STRIDE
from qtrigger.generate.tasks import run_tasks
from qtrigger.generate.tracks import straight_line_ip

LIBRARY_ETA_MAX = 3.0
MANIFEST = "library.json"
FORMAT = 1
DEFAULT_MAX_REUSE = 10
PERMUTATION_TAG = 6  # default_rng([seed, 7, 6, process, j]): permutation j of the library
STORED = {"px": np.float32, "py": np.float32, "pz": np.float32, "E": np.float32, "pdg": np.int32,
          "kind": np.int8, "charge": np.int8, "d0": np.float32, "z0": np.float32}


def chunk_file(directory: Path, index: int) -> Path:
    return Path(directory) / f"chunk_{index:05d}.npz"


# --------------------------------------------------------------------------- one chunk


def interaction_arrays(p: dict, charges: ChargeTable) -> dict:
    """Stored arrays of flat interactions ``p`` (:func:`~qtrigger.generate.events.pileup_particles`)."""
    pt = np.hypot(p["px"], p["py"])
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, p["pz"] / pt, np.inf))
    keep = _visible(p) & (np.abs(eta) < LIBRARY_ETA_MAX)
    idx = np.flatnonzero(keep)
    charge = charges(p["id"][idx])
    d0, z0 = straight_line_ip(p["vx"][idx], p["vy"][idx], p["vz"][idx], p["px"][idx], p["py"][idx], p["pz"][idx])
    out = {k: p[k][idx] for k in ("px", "py", "pz", "E")}
    out.update(pdg=p["id"][idx], kind=_visible_kind(p["id"][idx], charge), charge=np.rint(charge),
               d0=np.where(charge != 0, d0, 0.0), z0=np.where(charge != 0, z0, 0.0))
    out = {k: np.asarray(v).astype(STORED[k]) for k, v in out.items()}
    out["counts"] = np.bincount(p["evt"][idx], minlength=len(p["counts"])).astype(np.int32)
    out["pthat"] = p["pthat"].astype(np.float32)
    return out


def _library_part(spec: dict) -> dict:
    """Generate one library chunk into ``spec['path']`` (atomic; runs in a Dask worker)."""
    pythia8mc, _ = import_generators()
    cpu0 = time.process_time()
    pythia = make_pythia(pythia8mc, pileup_settings(), spec["pythia_seed"])
    charges, parts, done = ChargeTable(pythia.particleData), [], 0
    while done < spec["n_events"]:
        n = min(spec["batch_size"], spec["n_events"] - done)
        parts.append(interaction_arrays(pileup_particles(pythia, n), charges))
        done += n
        if spec.get("bar") is not None:
            spec["bar"].update(n)
    arrays = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    sigma = sigma_inel_mb(pythia)
    meta = np.array([spec["seed"], spec["index"], spec["n_events"], spec["pythia_seed"]], dtype=np.int64)
    path = Path(spec["path"])
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        np.savez(handle, meta=meta, sigma_inel_mb=np.float64(sigma), **arrays)
    os.replace(tmp, path)
    return {"events": spec["n_events"], "cpu_seconds": time.process_time() - cpu0, "sigma_inel_mb": sigma}


def _chunk_done(path: Path, spec: dict) -> bool:
    """True when ``path`` is a complete chunk file made with the same seed, index, size and Pythia seed."""
    try:
        with np.load(path) as data:
            return data["meta"].tolist() == [spec["seed"], spec["index"], spec["n_events"], spec["pythia_seed"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # missing, cut or foreign: make it again
        return False


# --------------------------------------------------------------------------- the library


def library_specs(n: int, seed: int, directory: Path, chunk_size: int, batch_size: int, chunk_seed) -> list[dict]:
    """One spec per chunk of ``n`` interactions."""
    return [{"seed": int(seed), "index": k, "n_events": min(chunk_size, n - first),
             "pythia_seed": chunk_seed(seed, 0, k), "path": str(chunk_file(directory, k)),
             "batch_size": int(batch_size)}
            for k, first in enumerate(range(0, n, chunk_size))]


def check_library_output(directory: Path, n: int, seed: int, chunk_size: int, overwrite: bool) -> None:
    """``directory`` is new, or a library (complete or partial) of the same request; another one needs
    ``overwrite`` (then only its chunk files and manifest are removed)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise QTriggerError(f"--library output {directory} is a file; give a folder (-o lib/)")
    if not directory.parent.is_dir():
        raise QTriggerError(f"output directory {directory.parent} does not exist")
    manifest = directory / MANIFEST
    if not manifest.exists():
        return
    old = json.loads(manifest.read_text())
    if (old.get("seed"), old.get("interactions"), old.get("chunk_size")) == (seed, n, chunk_size):
        return
    if not overwrite:
        raise QTriggerError(f"{directory} holds another library ({old.get('interactions')} interactions, seed "
                            f"{old.get('seed')}, chunk size {old.get('chunk_size')}); use --overwrite to replace it")
    for path in directory.glob("chunk_*.npz"):
        path.unlink()
    manifest.unlink()


def write_manifest(directory: Path, specs: list[dict], sigmas: list[float], chunk_size: int) -> dict:
    """``library.json`` (atomic) once every chunk exists; returns it."""
    files = []
    for spec in specs:
        digest = hashlib.sha256(Path(spec["path"]).read_bytes()).hexdigest()
        files.append({"file": Path(spec["path"]).name, "interactions": spec["n_events"], "sha256": digest})
    manifest = {"format": FORMAT, "seed": specs[0]["seed"], "interactions": sum(s["n_events"] for s in specs),
                "chunk_size": chunk_size, "eta_max": LIBRARY_ETA_MAX, "settings": "SoftQCD:inelastic",
                "sigma_inel_mb": float(np.mean(sigmas)), "chunks": files}
    tmp = Path(directory) / f".{MANIFEST}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, Path(directory) / MANIFEST)
    return manifest


def chunk_sigmas(specs: list[dict], results: dict[int, dict]) -> list[float]:
    """sigma_inel of every chunk: from this run's results, else from the kept chunk file."""
    out = []
    for k, spec in enumerate(specs):
        if k in results:
            out.append(results[k]["sigma_inel_mb"])
        else:
            with np.load(spec["path"]) as data:
                out.append(float(data["sigma_inel_mb"]))
    return out


# --------------------------------------------------------------------------- reading and drawing

_CACHE: dict[tuple[str, str], dict] = {}


def library_hash(manifest: dict) -> int:
    """A positive int64 naming the library: the first 15 hex digits of the manifest's SHA-256."""
    return int(hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:15], 16)


def read_manifest(directory) -> dict:
    """The manifest of a complete library, or a one-line error."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise QTriggerError(f"--pileup-library {directory}: no {MANIFEST} (not a complete library; make or finish "
                            "it with qtrigger data generate --process minbias --library N -o DIR)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise QTriggerError(f"--pileup-library {directory}: format {manifest.get('format')}, expected {FORMAT}")
    return manifest


def load_library(directory) -> dict:
    """Every stored array of the library, concatenated, plus ``start`` (first particle of each interaction);
    cached per process (a worker running several chunks reads it once)."""
    manifest = read_manifest(directory)
    key = (str(Path(directory).resolve()), str(library_hash(manifest)))
    if key not in _CACHE:
        parts = []
        for entry in manifest["chunks"]:
            with np.load(Path(directory) / entry["file"]) as data:
                parts.append({k: data[k] for k in (*STORED, "counts", "pthat")})
        lib = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        lib["start"] = np.concatenate([[0], np.cumsum(lib["counts"], dtype=np.int64)[:-1]])
        _CACHE.clear()
        _CACHE[key] = lib
    return _CACHE[key]


def draw_positions(size: int, seed: int, process_tag: int, first: int, count: int) -> np.ndarray:
    """Library indices at positions ``first .. first + count - 1`` of the seeded sequence of permutations."""
    positions = np.arange(first, first + count, dtype=np.int64)
    out = np.empty(count, dtype=np.int64)
    for j in np.unique(positions // size):
        perm = np.random.default_rng([int(seed), 7, PERMUTATION_TAG, int(process_tag), int(j)]).permutation(size)
        here = positions // size == j
        out[here] = perm[positions[here] % size]
    return out


def plan_draws(totals: list[int], size: int, max_reuse: int, directory) -> tuple[list[int], dict]:
    """Each chunk's first position in the draw sequence, and the reuse: ``mean`` (draws / size) and ``max``
    (the most any interaction is drawn). More than ``max_reuse`` is a one-line error."""
    offsets = np.concatenate([[0], np.cumsum(totals)[:-1]]).astype(int).tolist()
    draws = int(sum(totals))
    reuse = {"draws": draws, "size": int(size), "mean": draws / size, "max": math.ceil(draws / size)}
    if reuse["max"] > max_reuse:
        raise QTriggerError(f"--pileup-library {directory}: {draws} draws from {size} interactions reuse each up to "
                            f"{reuse['max']} times, above the cap {max_reuse} (--pileup-max-reuse); make a larger "
                            "library or fewer events")
    return offsets, reuse


def check_library_use(directory, pileup: float, jet_eta_max: float, max_reuse) -> dict | None:
    """The manifest of ``--pileup-library`` (None without one): it needs mu > 0, a complete library, and
    particles far enough in |eta| for the jets (jet |eta| cut + R)."""
    if directory is None:
        return None
    if not pileup > 0:
        raise QTriggerError("--pileup-library needs --pileup MU > 0 (the mean interactions it overlays)")
    if not (isinstance(max_reuse, int) and max_reuse >= 1):
        raise QTriggerError(f"--pileup-max-reuse must be an integer >= 1, got {max_reuse}")
    manifest = read_manifest(directory)
    if jet_eta_max + 0.4 > manifest["eta_max"]:
        raise QTriggerError(f"--pileup-library {directory} stores particles with |eta| < {manifest['eta_max']:g}: "
                            f"jets up to |eta| {jet_eta_max:g} (+ R = 0.4) need more; lower --jet-eta-max")
    return manifest


# --------------------------------------------------------------------------- the command


def generate_library(n: int, seed: int, output, chunk_size: int = 5000, workers: int | None = None,
                     scheduler=None, progress: bool = True, overwrite: bool = False, batch_size: int = 250) -> dict:
    """Generate (or resume) a pileup library of ``n`` inelastic interactions in the folder ``output``.

    Chunks already written with the same seed and size are kept. Returns a summary: ``output``,
    ``interactions``, ``chunks``, ``generated`` (chunks made now), ``sigma_inel_mb``, ``hash``, ``particles``
    (stored per interaction, mean), ``cpu_seconds`` (of the chunks made now) and ``seconds``.
    """

    n, chunk_size = int(n), int(chunk_size)
    if n <= 0 or chunk_size < 1 or batch_size < 1:
        raise QTriggerError(f"--library needs N > 0 interactions and --chunk-size >= 1, got {n}, {chunk_size}")
    if not 1 <= seed <= (SEED_MAX - SEED_STRIDE) // SEED_STRIDE or math.ceil(n / chunk_size) > 10_000:
        raise QTriggerError(f"--library: seed must be in 1..{(SEED_MAX - SEED_STRIDE) // SEED_STRIDE} and at most "
                            f"10000 chunks, got seed {seed}, {math.ceil(n / chunk_size)} chunks")
    directory = Path(output)
    check_library_output(directory, n, int(seed), chunk_size, overwrite)
    import_generators()
    directory.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    specs = library_specs(n, int(seed), directory, chunk_size, batch_size,
                          lambda s, b, k: s * SEED_STRIDE + b * 10_000 + k)
    todo = [k for k, spec in enumerate(specs) if not _chunk_done(Path(spec["path"]), spec)]
    if scheduler is not None:
        workers = None
    elif workers is None:
        workers = 0 if len(todo) <= 1 else min(os.cpu_count() or 1, len(todo))
    made = run_tasks(_library_part, [specs[k] for k in todo], workers, scheduler, progress, "library", "int")
    results = dict(zip(todo, made))
    manifest = write_manifest(directory, specs, chunk_sigmas(specs, results), chunk_size)
    lib = load_library(directory)
    return {"output": str(directory), "interactions": n, "chunks": len(specs), "generated": len(todo),
            "sigma_inel_mb": manifest["sigma_inel_mb"], "hash": library_hash(manifest),
            "particles": float(lib["counts"].mean()), "cpu_seconds": sum(r["cpu_seconds"] for r in made),
            "seconds": time.perf_counter() - t0, "workers": workers}
