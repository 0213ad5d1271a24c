"""Physics-generated jet samples in the NanoAOD schema: Pythia 8 + FastJet -> ROOT.

Events are generated with ``pythia8mc`` (pp at 13 TeV, Pythia defaults otherwise:
showers, MPI and hadronization on) in batches with ``Pythia.nextBatch`` (awkward event
records), clustered batch-wise with FastJet's awkward interface (anti-kT, R = 0.4) and
written batch by batch to a ROOT file with an ``Events`` TTree (``nJet`` + ``Jet_*``) and
a one-entry ``Runs`` TTree. There are no Python loops over particles, jets or events:
every step is a numpy/awkward array operation over a whole batch.

Processes
    ``ttbar``   ``Top:gg2ttbar``, ``Top:qqbar2ttbar`` (all top decays).
    ``qcd``     ``HardQCD:all`` with ``PhaseSpace:pTHatMin = pthat_min``.
    ``wjets``   W + 1 parton at matrix-element level, ``WeakBosonAndParton:qqbar2Wg`` and
                ``qg2Wq`` with ``PhaseSpace:pTHatMin = pthat_min``, standard W decays.
                Inclusive ``WeakSingleBoson:ffbar2W`` is deliberately *not* added: its
                matrix-element-corrected shower already produces W + jet, so mixing it
                with the 2 -> 2 processes would double count (and give a meaningless
                cross-section).
    ``minbias`` ``SoftQCD:nonDiffractive``.

Biased QCD (``bias_pow``, CLI ``--bias-pow``; ``qcd`` and ``wjets`` only)
    ``PhaseSpace:bias2Selection = on``, ``bias2SelectionPow = bias_pow``,
    ``bias2SelectionRef = pthat_min``: pTHat is sampled more often at high pT by
    ``(pTHat / pthat_min) ** bias_pow`` and each event carries the compensating weight
    Pythia reports (``info.weight()``), stored as ``genWeight``. Unbiased processes have
    ``genWeight = 1``. The cross-section of an event sample is ``genXsec_mb`` in ``Runs``
    (Pythia's ``sigmaGen``/``sigmaErr`` at the end of the run, in mb); the physical
    per-event cross-section is ``genXsec_mb * genWeight / genEventSumw``.

    Completeness: in a pTHat > 5 GeV sample, 31 % of the (weighted) jets with
    20 < pt < 25 GeV came from events with pTHat < 15 GeV and none from pTHat < 10 GeV, so
    ``--pthat-min 10`` gives a QCD sample complete for jets above 20 GeV and
    ``--pthat-min 15`` does not.

Particles and jets
    Jet inputs are the final-state particles (status > 0) minus neutrinos
    (|id| 12, 14, 16), plus pileup particles if requested. Jets: anti-kT R = 0.4 (E-scheme),
    ``pt > jet_pt_min``, ``|eta| < jet_eta_max``, sorted by pt, descending.

Energy fractions (``Jet_*EF``): energy of the constituents of one type / summed energy of
all visible constituents (= jet energy), so they lie in [0, 1] and sum to 1. Type mapping:

    =============  ==========================================================
    ``Jet_muEF``   muons, |id| = 13
    ``Jet_chEmEF`` electrons/positrons, |id| = 11
    ``Jet_neEmEF`` photons, id = 22
    ``Jet_chHEF``  every other charged particle (pi+-, K+-, p, ...)
    ``Jet_neHEF``  every other neutral particle (n, K_L, ...)
    =============  ==========================================================

``Jet_nConstituents`` counts visible particles (ghosts excluded); int32, as particle-level
counts can exceed 255.

Jet flavour (ghost association, CMS ``JetFlavourClustering`` definitions)
    Ghosts (momentum scaled by 1e-18) are clustered together with the particles; they
    come from the hard interaction only, never from pileup.

    - b hadrons: hadrons with a b quark in their PDG code (``nq1/nq2/nq3`` digits = 5),
      c hadrons: a c quark and no b quark. Only the *last* ones are used: hadrons with no
      b (c) hadron among their daughters (found through ``mother1`` of the heavy hadrons).
      ``Jet_hadronFlavour`` = 5 if a b-hadron ghost is in the jet, else 4 if a c-hadron
      ghost is, else 0.
    - partons: quarks d..b and gluons with negative status whose daughters are not partons,
      i.e. the last partons before hadronization. ``Jet_partonFlavour`` is the (signed)
      PDG id of the hardest b parton in the jet, else of the hardest c parton, else of the
      hardest parton, else 0 (CMS with ``hadronFlavourHasPriority = False``).

Pileup (``pileup = MU``)
    A second Pythia instance (``SoftQCD:nonDiffractive``, seed = hard seed + 450,000,000)
    provides Poisson(MU) minimum-bias interactions per hard event (numpy PCG64 seeded with
    the hard seed); their visible final-state particles are clustered with the hard event
    (no vertex displacement, no timing, all at the same point).
    Measured cost (ttbar, 300 events, 1 core, initialisation included): 10 ms/event
    without pileup, 37 ms/event at MU = 10, i.e. ~2.7 ms per minimum-bias interaction;
    ttbar jets/event go from 5.4 to 7.4 and mean constituents/jet from 18 to 34.

pTHat bins (``pthat_bins``, CLI ``--pthat-bins 10,15,20,...``; ``qcd`` and ``wjets``)
    One file per bin ``[E_i, E_i+1)`` (``PhaseSpace:pTHatMin/pTHatMax``; the last bin is open),
    unbiased within each bin (``genWeight = 1``) unless ``bias_pow`` is also given. Unbiased
    bins are the default because within a bin every event then has the same absolute weight
    ``sigma_b / N_b``: the effective count of any selection is its event count, and the bin
    event counts set the statistical power exactly where a rate needs it (a bias only reshapes
    the pTHat spectrum inside a bin, which narrow bins already do). The files of one sample
    are stitched by :mod:`qtrigger.samples` (``sigma = sum_b sigma_b``, per-event weight
    ``sigma_b w / sum_b w``). ``Generator_binvar`` (per event, as in NanoAOD) is Pythia's pTHat.

Seeds, chunks and Dask
    The events of each bin are cut into chunks of ``chunk_size`` events (the last may be
    smaller); chunk ``k`` of bin ``b`` uses Pythia ``Random:seed = seed * 1,000,000 +
    b * 10,000 + k`` (:func:`chunk_seed`; 1 <= seed <= 449). Chunks run as tasks on
    dask.distributed (a ``LocalCluster`` of ``workers`` single-threaded processes by default,
    or an existing scheduler; ``workers = 0`` runs them in this process) and write part files
    next to the output; the parts are merged in chunk order into each bin's file. So the same
    (seed, bins, events, chunk_size) gives identical event content on any number of workers.
    Legacy ``jobs = K`` (one bin only) cuts the sample into K near-equal chunks seeded
    ``seed`` (K = 1) or ``seed * 1000 + k``, which reproduces samples made before chunking
    (``data/default``). ``event`` numbers are 1..N over each file.

``Runs`` tree (one entry per file)
    ``genEventCount`` (int64), ``genEventSumw``/``genEventSumw2`` (float64, sums over chunks),
    ``genXsec_mb``/``genXsecErr_mb`` (float64: average of the chunks' cross-sections weighted
    by their event counts; error ``sqrt(sum (n_k err_k)^2) / sum n_k``), ``isMinBias``
    (int32), ``pthatMin``/``pthatMax`` (float64; 0 and +inf where no pTHat cut applies),
    ``genFilterEff`` (float64, 1: no generator filter is applied), ``seed`` (int64, the base
    seed).

Output is written to temporary files in the target directory and renamed only when every
bin is complete, so an interrupted or failed run leaves no output file and no parts.
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

from qtrigger.cluster import dask_client
from qtrigger.errors import QTriggerError
from qtrigger.samples import combine_same_bin

PROCESSES = ("ttbar", "qcd", "wjets", "minbias")
SEED_MAX = 450_000_000  # Pythia accepts up to 900,000,000; the upper half is for pileup
PILEUP_SEED_OFFSET = 450_000_000
SEED_STRIDE = 1_000_000  # chunk seed = seed * SEED_STRIDE + bin * BIN_STRIDE + chunk
BIN_STRIDE = 10_000
MAX_BINS = SEED_STRIDE // BIN_STRIDE
DEFAULT_CHUNK_SIZE = 500
GHOST_SCALE = 1e-18
JET_R = 0.4
NEUTRINOS = (12, 14, 16)

# Constituent kinds (index into the per-jet energy table).
KIND_NAMES = ("chHEF", "neHEF", "chEmEF", "neEmEF", "muEF")
K_CHH, K_NEH, K_CHEM, K_NEEM, K_MU, K_BHAD, K_CHAD, K_PARTON = range(8)
N_KINDS = 8

JET_FIELDS = {
    "pt": np.float32,
    "eta": np.float32,
    "phi": np.float32,
    "mass": np.float32,
    "chHEF": np.float32,
    "neHEF": np.float32,
    "chEmEF": np.float32,
    "neEmEF": np.float32,
    "muEF": np.float32,
    "nConstituents": np.int32,
    "hadronFlavour": np.int32,
    "partonFlavour": np.int32,
}
EVENT_FIELDS = {"event": np.uint64, "genWeight": np.float32, "Generator_binvar": np.float32}
RUNS_FIELDS = {
    "genEventCount": np.int64,
    "genEventSumw": np.float64,
    "genEventSumw2": np.float64,
    "genXsec_mb": np.float64,
    "genXsecErr_mb": np.float64,
    "isMinBias": np.int32,
    "pthatMin": np.float64,
    "pthatMax": np.float64,
    "genFilterEff": np.float64,
    "seed": np.int64,
}
PART_COMPRESSION = ("ZLIB", 1)  # parts are recompressed by the merge
OUTPUT_COMPRESSION = ("LZMA", 9)


# --------------------------------------------------------------------------- imports


def _import_generators():
    """(pythia8mc, fastjet) or a QTriggerError telling how to install them."""
    try:
        import fastjet
        import pythia8mc
    except ImportError as exc:
        raise QTriggerError(
            f"the generator needs pythia8mc and fastjet ({exc.name} is not installed): "
            "pip install '.[generate]'"
        ) from None
    try:  # FastJet prints its banner to stdout on first use; keep stdout for the summary
        fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    except AttributeError:
        pass
    return pythia8mc, fastjet


def _compression(spec):
    import uproot

    name, level = spec
    return getattr(uproot, name)(level)


# --------------------------------------------------------------------------- Pythia setup


def process_settings(process: str, pthat_min: float = 30.0, bias_pow: float | None = None,
                     pthat_max: float | None = None) -> list[str]:
    """Pythia ``readString`` settings for one process (without seed and print settings)."""
    common = ["Beams:idA = 2212", "Beams:idB = 2212", "Beams:eCM = 13000."]
    if process == "ttbar":
        proc = ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"]
    elif process == "qcd":
        proc = ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {pthat_min}"]
    elif process == "wjets":
        proc = [
            "WeakBosonAndParton:qqbar2Wg = on",
            "WeakBosonAndParton:qg2Wq = on",
            f"PhaseSpace:pTHatMin = {pthat_min}",
        ]
    elif process == "minbias":
        proc = ["SoftQCD:nonDiffractive = on"]
    else:
        raise QTriggerError(f"unknown process {process!r}; expected one of {', '.join(PROCESSES)}")
    if pthat_max is not None and process in ("qcd", "wjets"):
        proc.append(f"PhaseSpace:pTHatMax = {pthat_max}")
    if bias_pow is not None:
        proc += [
            "PhaseSpace:bias2Selection = on",
            f"PhaseSpace:bias2SelectionPow = {bias_pow}",
            f"PhaseSpace:bias2SelectionRef = {pthat_min}",
        ]
    return common + proc


def _applied_pthat_min(process: str, pthat_min: float) -> float:
    return float(pthat_min) if process in ("qcd", "wjets") else 0.0


def _make_pythia(pythia8mc, settings: list[str], seed: int):
    """An initialised, quiet Pythia instance."""
    pythia = pythia8mc.Pythia("", False)
    quiet = ["Print:quiet = on", "Next:numberCount = 0", "Next:numberShowEvent = 0"]
    for line in [*settings, *quiet, "Random:setSeed = on", f"Random:seed = {seed}"]:
        if not pythia.readString(line):
            raise QTriggerError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise QTriggerError(f"Pythia initialisation failed for settings {settings}")
    return pythia


def _next_batch(pythia, n: int):
    """Exactly ``n`` events (failed events are retried, at most 10 n tries)."""
    try:
        return pythia.nextBatch(int(n), 10.0)
    except RuntimeError as exc:
        raise QTriggerError(f"Pythia failed to generate {n} events: {exc}") from None


# --------------------------------------------------------------------------- particle arrays


def _flat_particles(batch, fields=("id", "status", "mother1", "daughter1", "daughter2")) -> dict:
    """Flat numpy columns of all particles of a batch, plus ``counts`` and ``start``."""
    import awkward as ak

    prt = batch["prt"]
    out = {"counts": ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)}
    for name in fields:
        out[name] = ak.to_numpy(ak.flatten(prt[name], axis=1))
    for name, src in (("px", "px"), ("py", "py"), ("pz", "pz"), ("E", "e")):
        out[name] = ak.to_numpy(ak.flatten(prt["p"][src], axis=1)).astype(np.float64)
    out["start"] = np.concatenate([[0], np.cumsum(out["counts"])[:-1]]).astype(np.int64)
    out["evt"] = np.repeat(np.arange(len(out["counts"]), dtype=np.int64), out["counts"])
    return out


def _quark_digits(aid: np.ndarray):
    return (aid // 1000) % 10, (aid // 100) % 10, (aid // 10) % 10


def heavy_flavour(pdg_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is b hadron, is c hadron) from PDG ids: quark digits nq1/nq2/nq3; c excludes b."""
    aid = np.abs(pdg_id)
    nq1, nq2, nq3 = _quark_digits(aid)
    hadron = (aid > 100) & (nq3 > 0)
    has_b = hadron & ((nq1 == 5) | (nq2 == 5) | (nq3 == 5))
    has_c = hadron & ((nq1 == 4) | (nq2 == 4) | (nq3 == 4)) & ~has_b
    return has_b, has_c


def _is_parton(pdg_id: np.ndarray) -> np.ndarray:
    aid = np.abs(pdg_id)
    return ((aid >= 1) & (aid <= 5)) | (aid == 21)


def _last_of(flag: np.ndarray, p: dict) -> np.ndarray:
    """``flag`` particles none of whose daughters is flagged (via daughters' mother1)."""
    daughters = np.flatnonzero(flag & (p["mother1"] > 0))
    mothers = p["start"][p["evt"][daughters]] + p["mother1"][daughters]
    is_mother = np.zeros(len(flag), dtype=bool)
    is_mother[mothers] = True
    return flag & ~is_mother


def _ghost_partons(p: dict) -> np.ndarray:
    """Quarks/gluons with negative status whose daughters (d1 and d2) are not partons."""
    parton = _is_parton(p["id"]) & (p["status"] < 0) & (p["daughter1"] > 0)
    base = p["start"][p["evt"]]
    n = len(parton)
    d1 = np.clip(base + p["daughter1"], 0, n - 1)
    d2 = np.clip(base + p["daughter2"], 0, n - 1)
    d2_parton = (p["daughter2"] > 0) & _is_parton(p["id"][d2])
    return parton & ~_is_parton(p["id"][d1]) & ~d2_parton


class _ChargeTable:
    """PDG id -> electric charge, looked up once per species in Pythia's ParticleData."""

    def __init__(self, particle_data):
        self._pd = particle_data
        self._cache: dict[int, float] = {}

    def __call__(self, pdg_id: np.ndarray) -> np.ndarray:
        uniq, inverse = np.unique(pdg_id, return_inverse=True)
        for code in uniq.tolist():  # a few dozen species, not particles
            if code not in self._cache:
                self._cache[code] = float(self._pd.charge(int(code)))
        return np.array([self._cache[c] for c in uniq.tolist()], dtype=np.float64)[inverse]


def _visible_kind(pdg_id: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """Constituent kind (K_CHH ... K_MU) of visible final-state particles."""
    aid = np.abs(pdg_id)
    kind = np.where(charge != 0, K_CHH, K_NEH)
    kind = np.where(aid == 11, K_CHEM, kind)
    kind = np.where(aid == 22, K_NEEM, kind)
    kind = np.where(aid == 13, K_MU, kind)
    return kind.astype(np.int8)


def _visible(p: dict) -> np.ndarray:
    return (p["status"] > 0) & ~np.isin(np.abs(p["id"]), NEUTRINOS)


def _select(p: dict, mask: np.ndarray, evt: np.ndarray, kind, scale: float = 1.0) -> dict:
    idx = np.flatnonzero(mask)
    out = {k: p[k][idx] * scale for k in ("px", "py", "pz", "E")}
    out["E_true"] = p["E"][idx]
    out["pt_true"] = np.hypot(p["px"][idx], p["py"][idx])
    out["pdg"] = p["id"][idx].astype(np.int32)
    out["evt"] = evt[idx]
    out["kind"] = kind if np.ndim(kind) else np.full(len(idx), kind, dtype=np.int8)
    return out


def _hard_inputs(batch, charges: _ChargeTable) -> list[dict]:
    """Clustering inputs of the hard events: visible particles and flavour ghosts."""
    p = _flat_particles(batch)
    vis = _visible(p)
    is_b, is_c = heavy_flavour(p["id"])
    pieces = [_select(p, vis, p["evt"], _visible_kind(p["id"][vis], charges(p["id"][vis])))]
    pieces.append(_select(p, _last_of(is_b, p), p["evt"], K_BHAD, GHOST_SCALE))
    pieces.append(_select(p, _last_of(is_c, p), p["evt"], K_CHAD, GHOST_SCALE))
    pieces.append(_select(p, _ghost_partons(p), p["evt"], K_PARTON, GHOST_SCALE))
    return pieces


def _pileup_inputs(pu_pythia, rng, mu: float, n_events: int, charges: _ChargeTable) -> list[dict]:
    """Visible particles of Poisson(mu) minimum-bias interactions per hard event."""
    n_pu = rng.poisson(mu, size=n_events)
    total = int(n_pu.sum())
    if total == 0:
        return []
    p = _flat_particles(_next_batch(pu_pythia, total), fields=("id", "status"))
    owner = np.repeat(np.arange(n_events, dtype=np.int64), n_pu)
    vis = _visible(p)
    return [_select(p, vis, owner[p["evt"]], _visible_kind(p["id"][vis], charges(p["id"][vis])))]


# --------------------------------------------------------------------------- clustering


def _merge_inputs(pieces: list[dict], n_events: int) -> dict:
    """Concatenate input pieces and order them by event (stable)."""
    cat = {k: np.concatenate([piece[k] for piece in pieces]) for k in pieces[0]}
    order = np.argsort(cat["evt"], kind="stable")
    cat = {k: v[order] for k, v in cat.items()}
    counts = np.bincount(cat["evt"], minlength=n_events).astype(np.int64)
    cat["offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return cat


def _cluster(fastjet, inputs: dict, jet_pt_min: float):
    """Anti-kT R=0.4 on all events at once: (jets px/py/pz/E, jet event, constituent idx)."""
    import awkward as ak

    content = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(inputs[k])) for k in ("px", "py", "pz", "E")],
        ["px", "py", "pz", "E"],
    )
    events = ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(inputs["offsets"]), content))
    sequence = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
    jets = sequence.inclusive_jets(min_pt=jet_pt_min)
    index = sequence.constituent_index(min_pt=jet_pt_min)
    n_jets = ak.to_numpy(ak.num(jets, axis=1)).astype(np.int64)
    four = {k: ak.to_numpy(ak.flatten(jets[k], axis=1)).astype(np.float64) for k in ("px", "py", "pz", "E")}
    jet_event = np.repeat(np.arange(len(n_jets), dtype=np.int64), n_jets)
    n_const = ak.to_numpy(ak.flatten(ak.num(index, axis=2), axis=1)).astype(np.int64)
    local = ak.to_numpy(ak.flatten(index, axis=None)).astype(np.int64)
    return four, jet_event, n_const, local


def _jet_kinematics(four: dict) -> dict:
    pt = np.hypot(four["px"], four["py"])
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(four["pz"] / pt)
    p2 = pt**2 + four["pz"] ** 2
    return {
        "pt": pt,
        "eta": eta,
        "phi": np.arctan2(four["py"], four["px"]),
        "mass": np.sqrt(np.maximum(four["E"] ** 2 - p2, 0.0)),
    }


def _parton_flavour(n_jets: int, jet_of: np.ndarray, kind: np.ndarray, pdg: np.ndarray, pt: np.ndarray):
    """Hardest b parton, else hardest c parton, else hardest parton (signed PDG id), else 0."""
    sel = kind == K_PARTON
    jet, pdg, pt = jet_of[sel], pdg[sel], pt[sel]
    aid = np.abs(pdg)
    priority = np.where(aid == 5, 2, np.where(aid == 4, 1, 0))
    order = np.lexsort((pt, priority, jet))  # last entry per jet = chosen parton
    jet, pdg = jet[order], pdg[order]
    is_last = np.ones(len(jet), dtype=bool)
    is_last[:-1] = jet[1:] != jet[:-1]
    flavour = np.zeros(n_jets, dtype=np.int32)
    flavour[jet[is_last]] = pdg[is_last]
    return flavour


def _jet_table(fastjet, inputs: dict, n_events: int, jet_pt_min: float, jet_eta_max: float):
    """Per-jet columns (selected, sorted by pt within each event) and jets per event."""
    four, jet_event, n_const, local = _cluster(fastjet, inputs, jet_pt_min)
    n_jets = len(jet_event)
    jet_of = np.repeat(np.arange(n_jets, dtype=np.int64), n_const)
    glob = inputs["offsets"][jet_event[jet_of]] + local
    kind = inputs["kind"][glob].astype(np.int64)
    key = jet_of * N_KINDS + kind
    energy = np.bincount(key, weights=inputs["E_true"][glob], minlength=n_jets * N_KINDS)
    number = np.bincount(key, minlength=n_jets * N_KINDS)
    energy, number = energy.reshape(n_jets, N_KINDS), number.reshape(n_jets, N_KINDS)

    cols = _jet_kinematics(four)
    e_vis = energy[:, :5].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(energy[:, :5] / e_vis[:, None], 0.0, 1.0)
    for k, name in enumerate(KIND_NAMES):
        cols[name] = frac[:, k]
    cols["nConstituents"] = number[:, :5].sum(axis=1)
    cols["hadronFlavour"] = np.where(number[:, K_BHAD] > 0, 5, np.where(number[:, K_CHAD] > 0, 4, 0))
    cols["partonFlavour"] = _parton_flavour(n_jets, jet_of, kind, inputs["pdg"][glob], inputs["pt_true"][glob])

    keep = (cols["pt"] > jet_pt_min) & (np.abs(cols["eta"]) < jet_eta_max) & (e_vis > 0)
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((-cols["pt"][idx], jet_event[idx]))]
    cols = {name: cols[name][idx].astype(dtype) for name, dtype in JET_FIELDS.items()}
    counts = np.bincount(jet_event[idx], minlength=n_events).astype(np.int64)
    return cols, counts


def _to_awkward(cols: dict, counts: np.ndarray):
    """Jet record array (events x jets) from flat columns and per-event counts."""
    import awkward as ak

    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    content = ak.contents.RecordArray([ak.contents.NumpyArray(cols[k]) for k in JET_FIELDS], list(JET_FIELDS))
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), content))


# --------------------------------------------------------------------------- ROOT output


def _jet_type() -> str:
    names = {np.float32: "float32", np.int32: "int32"}
    return "var * {" + ", ".join(f"{k}: {names[v]}" for k, v in JET_FIELDS.items()) + "}"


def _open_output(path: Path, compression):
    """(file, Events tree, Runs tree) of a new ROOT file."""
    import uproot

    file = uproot.recreate(path, compression=_compression(compression))
    events = file.mktree("Events", {**EVENT_FIELDS, "Jet": _jet_type()})
    runs = file.mktree("Runs", dict(RUNS_FIELDS))
    return file, events, runs


def _write_runs(runs_tree, runs: dict) -> None:
    runs_tree.extend({k: np.array([runs[k]], dtype=dtype) for k, dtype in RUNS_FIELDS.items()})


# --------------------------------------------------------------------------- one chunk


def _generate_part(spec: dict) -> dict:
    """Generate ``spec['n_events']`` events into ``spec['path']`` (runs in a Dask worker).

    Returns the counts, the ``Runs`` entry written and the seconds taken. ``spec['bar']``
    (in-process runs only) is a progress bar updated per batch.
    """
    import awkward as ak

    pythia8mc, fastjet = _import_generators()
    t0, cpu0 = time.perf_counter(), time.process_time()
    pythia = _make_pythia(pythia8mc, spec["settings"], spec["pythia_seed"])
    charges = _ChargeTable(pythia.particleData)
    pu_pythia, rng = None, np.random.default_rng(spec["pythia_seed"])
    if spec["pileup"] > 0:
        pu_pythia = _make_pythia(
            pythia8mc, process_settings("minbias"), spec["pythia_seed"] + PILEUP_SEED_OFFSET
        )
    counts = {"events": 0, "jets": 0, "sumw": 0.0, "sumw2": 0.0, "flavour": {0: 0, 4: 0, 5: 0}}
    file, events_tree, runs_tree = _open_output(spec["path"], spec["compression"])
    with file:
        done = 0
        while done < spec["n_events"]:
            n = min(spec["batch_size"], spec["n_events"] - done)
            batch = _next_batch(pythia, n)
            weight = ak.to_numpy(batch["info"]["weights"][:, 0]).astype(np.float64)
            pthat = np.sqrt(ak.to_numpy(batch["info"]["pT2Hat"]).astype(np.float64))
            pieces = _hard_inputs(batch, charges)
            if pu_pythia is not None:
                pieces += _pileup_inputs(pu_pythia, rng, spec["pileup"], n, charges)
            del batch
            cols, njet = _jet_table(fastjet, _merge_inputs(pieces, n), n, spec["jet_pt_min"], spec["jet_eta_max"])
            first = spec["event_start"] + done
            events_tree.extend(
                {
                    "event": np.arange(first, first + n, dtype=np.uint64),
                    "genWeight": weight.astype(np.float32),
                    "Generator_binvar": pthat.astype(np.float32),
                    "Jet": _to_awkward(cols, njet),
                }
            )
            _count(counts, n, weight, cols)
            done += n
            if spec.get("bar") is not None:
                spec["bar"].update(n)
        info = pythia.infoPython()  # a fresh object: older handles show stale sigmaGen
        runs = _runs_entry(spec, counts, info.sigmaGen(), info.sigmaErr())
        _write_runs(runs_tree, runs)
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

    file, events_tree, runs_tree = _open_output(target, OUTPUT_COMPRESSION)
    with file:
        for part in parts:
            with uproot.open(part) as f:
                for chunk in f["Events"].iterate(step_size=step, library="ak"):
                    jets = ak.zip({k: chunk[f"Jet_{k}"] for k in JET_FIELDS})
                    events_tree.extend({**{k: chunk[k] for k in EVENT_FIELDS}, "Jet": jets})
        _write_runs(runs_tree, runs)


def combine_runs(runs: list[dict]) -> dict:
    """Deprecated alias of :func:`qtrigger.samples.combine_same_bin` (files of one bin)."""
    return combine_same_bin(runs)


# --------------------------------------------------------------------------- public API


def _validate(process, events_per_bin, seed, jobs, pileup, bias_pow, batch_size, jet_pt_min, jet_eta_max,
              bins, chunk_size, workers):
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
    if pileup < 0 or not math.isfinite(pileup):
        raise QTriggerError(f"pileup must be a finite number >= 0, got {pileup}")
    if bias_pow is not None and process not in ("qcd", "wjets"):
        raise QTriggerError(f"--bias-pow applies to pTHat-generated processes (qcd, wjets), not {process}")
    if jet_pt_min < 0 or jet_eta_max <= 0:
        raise QTriggerError(f"jet cuts must be pt_min >= 0 and eta_max > 0, got {jet_pt_min}, {jet_eta_max}")


def _check_outputs(outputs: list[Path], overwrite: bool) -> None:
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not overwrite:
        verb = "exists" if len(existing) == 1 else "exist"
        raise QTriggerError(f"output {', '.join(existing)} already {verb} (use --overwrite to replace it)")
    for parent in {p.parent for p in outputs}:
        if not parent.is_dir():
            raise QTriggerError(f"output directory {parent} does not exist")


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
) -> dict:
    """Generate ``n_events`` events of ``process`` and write NanoAOD-schema jets to ``output``.

    See the module docstring for the physics content, pTHat bins, seeds, Dask and the schema.
    ``pthat_bins`` (edges, last bin open; qcd/wjets) writes one file per bin (:func:`bin_outputs`),
    ``n_events`` events in each (or a list, one count per bin); ``pthat_min`` is then unused.
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
              bins, chunk_size, workers)
    if bins is None:
        bins = [(_applied_pthat_min(process, pthat_min), math.inf)]
    elif len(counts) == 1:
        counts = counts * len(bins)
    outputs = bin_outputs(output, process, None if pthat_bins is None else bins)
    _check_outputs(outputs, overwrite)
    _import_generators()

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
                             pileup, jet_pt_min, jet_eta_max, batch_size, seed) for c in chunks]
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
                pileup, jet_pt_min, jet_eta_max, batch_size, seed) -> dict:
    lo, hi = pthat_range
    settings = process_settings(process, pthat_min if unbinned else lo, bias_pow,
                                pthat_max=None if math.isinf(hi) else hi)
    return {
        "process": process, "settings": settings, "pthat_min": lo, "pthat_max": hi,
        "pileup": float(pileup), "jet_pt_min": float(jet_pt_min), "jet_eta_max": float(jet_eta_max),
        "batch_size": int(batch_size), "base_seed": int(seed), "n_events": chunk.n_events,
        "pythia_seed": chunk.pythia_seed, "event_start": chunk.first_event,
        "path": str(parts_dir / f"bin{chunk.bin_index}_chunk{chunk.index}.root"), "compression": PART_COMPRESSION,
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
