"""ROOT output of generated samples: field types of ``Events`` and ``Runs``, compression, writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
    "nDispTrk": np.int32,
    "maxD0Sig": np.float32,
    "dispTrkPt": np.float32,
    "d0Sig2": np.float32,
    "d0Sig3": np.float32,
}
# Leading constituents of each selected jet (JetCand_*; definitions in docs/generation.md).
CAND_FIELDS = {
    "pt": np.float32,
    "eta": np.float32,
    "phi": np.float32,
    "charge": np.int8,
    "class": np.uint8,
    "d0": np.float32,
    "z0": np.float32,
    "jetIdx": np.int16,
}
# Storage precision of the candidate floats: pt (and the Jet_ track summaries) keep 8 mantissa
# bits (relative step <= 2^-8 = 0.4 %); eta and phi are rounded to 2^-10 (~0.001), d0 to 2^-13 cm
# (~1.2 um), z0 to 2^-10 cm (~10 um). Power-of-two grids leave the low mantissa bits zero, which LZMA
# compresses away (measured: 13 % smaller JetCand branches than decimal grids; docs/generation.md).
CAND_GRID = {"eta": 2.0**-10, "phi": 2.0**-10, "d0": 2.0**-13, "z0": 2.0**-10}
MANTISSA_BITS = 8
# L1-like objects (--l1-objects; docs/generation.md, "L1 objects"): CMSSW's full L1 NanoAOD types (l1trig_cff: float
# kinematics, int16 hardware words; BXVectorSimpleFlatTableProducer's int32 bx; L1EtSum's int32 words and type).
_L1_OBJECT = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "hwPt": np.int16, "hwEta": np.int16,
              "hwPhi": np.int16, "hwQual": np.int16, "hwIso": np.int16, "bx": np.int32}
L1_FIELDS = {
    "L1Jet": dict(_L1_OBJECT),
    "L1EG": dict(_L1_OBJECT),
    "L1Tau": dict(_L1_OBJECT),
    "L1Mu": {**_L1_OBJECT, "hwCharge": np.int16},
    "L1EtSum": {"pt": np.float32, "phi": np.float32, "hwPt": np.int32, "hwPhi": np.int32, "etSumType": np.int32,
                "bx": np.int32},
}
# Runs entries of a file with L1 objects: the jet response and resolution terms it was made with.
L1_RUNS_FIELDS = {"l1JetResponse": np.float64, "l1JetResStochastic": np.float64, "l1JetResConstant": np.float64}
EVENT_FIELDS = {"event": np.uint64, "genWeight": np.float32, "Generator_binvar": np.float32, "PV_z": np.float32}
# Written only with pileup (mu > 0), so a mu = 0 file keeps its branches: overlay interactions in the event and
# the largest pTHat among them (0 when none); the mitigation's pT density rho (GeV per unit area) and L1 vertex
# z (cm, NaN without tracks); the raw jets' count, HT and leading pT (the detector-like inputs: calorimeter-like
# thresholds, without the mitigation's rho*A subtraction, charged-pileup removal and seed).
PILEUP_FIELDS = {"Pileup_nInt": np.int32, "Pileup_maxPtHat": np.float32, "Pileup_rho": np.float32,
                 "L1PV_z": np.float32, "RawJet_n": np.int32, "RawJet_ht": np.float32, "RawJet_leadPt": np.float32}
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
    "trackD0Res_um": np.float64,  # fixed L1-track d0 resolution, -1 = pT-dependent default
    "trackZ0Res_um": np.float64,  # same for z0
    "pileupMu": np.float64,  # mean inelastic interactions overlaid per event (per crossing for zero bias)
    "sigmaInel_mb": np.float64,  # the sigma_inel that defines mu (Pythia's total - elastic): L = mu f n / sigma
    "pileupLibraryHash": np.int64,  # the library's hash (library.json), 0 = none (direct Pythia overlay)
    "pileupReuse": np.float64,  # library draws / library size over the sample, 0 without a library
    "pileupMaxReuse": np.int64,  # the most any library interaction was drawn, 0 without a library
    "pileupMitigation": np.int32,  # 0 = none (raw particles clustered), 1 = Run-3-like, 2 = Phase-2-like
    "jetSeedGeV": np.float64,  # the mitigated jets' seed-constituent threshold, 0 = none (mu = 0)
}
PART_COMPRESSION = ("ZLIB", 1)  # parts are recompressed by the merge
OUTPUT_COMPRESSION = ("LZMA", 9)




# --------------------------------------------------------------------------- storage precision


def round_mantissa(x, bits: int = MANTISSA_BITS) -> np.ndarray:
    """float32 values rounded (half up in magnitude) to ``bits`` explicit mantissa bits."""
    f = np.ascontiguousarray(x, dtype=np.float32)
    drop = 23 - int(bits)
    u = f.view(np.uint32).astype(np.uint64)
    u = ((u + (1 << (drop - 1))) >> drop) << drop
    out = u.astype(np.uint32).view(np.float32)
    return np.where(np.isfinite(f), out, f)


def round_grid(x, step: float) -> np.ndarray:
    """float32 values rounded to multiples of ``step``."""
    return (np.rint(np.asarray(x, dtype=np.float64) / step) * step).astype(np.float32)


# --------------------------------------------------------------------------- ROOT output
def uproot_compression(spec):
    import uproot

    name, level = spec
    return getattr(uproot, name)(level)




def _record_type(fields: dict) -> str:
    return "var * {" + ", ".join(f"{k}: {np.dtype(v).name}" for k, v in fields.items()) + "}"


def open_output(path: Path, compression, candidates: bool = True, pileup: bool = False, l1: bool = False):
    """(file, Events tree, Runs tree) of a new ROOT file (``candidates``: with the ``JetCand`` collection;
    ``pileup``: with the :data:`PILEUP_FIELDS`; ``l1``: with the :data:`L1_FIELDS` collections and
    :data:`L1_RUNS_FIELDS`)."""
    import uproot

    file = uproot.recreate(path, compression=uproot_compression(compression))
    cands = {"JetCand": _record_type(CAND_FIELDS)} if candidates else {}
    extra = dict(PILEUP_FIELDS) if pileup else {}
    l1_types = {name: _record_type(fields) for name, fields in L1_FIELDS.items()} if l1 else {}
    events = file.mktree("Events", {**EVENT_FIELDS, **extra, "Jet": _record_type(JET_FIELDS), **cands, **l1_types})
    runs = file.mktree("Runs", {**RUNS_FIELDS, **(L1_RUNS_FIELDS if l1 else {})})
    return file, events, runs


GENERATED_MARK = ("seed", "pthatMin", "pthatMax", "genXsec_mb")  # Runs branches every generated file has


def is_generated_file(path: Path) -> bool:
    """True for a ROOT file this generator wrote (a ``Runs`` tree with :data:`GENERATED_MARK` branches)."""
    import uproot

    try:
        with uproot.open(path) as handle:
            return "Runs" in handle and set(GENERATED_MARK) <= set(handle["Runs"].keys())
    except (OSError, ValueError, KeyError, uproot.deserialization.DeserializationError):
        return False  # not readable as ROOT: not written by us


def write_runs(runs_tree, runs: dict) -> None:
    """The one ``Runs`` entry (with :data:`L1_RUNS_FIELDS` when ``runs`` has them)."""
    fields = {**RUNS_FIELDS, **(L1_RUNS_FIELDS if "l1JetResponse" in runs else {})}
    runs_tree.extend({k: np.array([runs[k]], dtype=dtype) for k, dtype in fields.items()})
