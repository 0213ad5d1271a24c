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




# --------------------------------------------------------------------------- ROOT output
def uproot_compression(spec):
    import uproot

    name, level = spec
    return getattr(uproot, name)(level)




def _jet_type() -> str:
    names = {np.float32: "float32", np.int32: "int32"}
    return "var * {" + ", ".join(f"{k}: {names[v]}" for k, v in JET_FIELDS.items()) + "}"


def open_output(path: Path, compression):
    """(file, Events tree, Runs tree) of a new ROOT file."""
    import uproot

    file = uproot.recreate(path, compression=uproot_compression(compression))
    events = file.mktree("Events", {**EVENT_FIELDS, "Jet": _jet_type()})
    runs = file.mktree("Runs", dict(RUNS_FIELDS))
    return file, events, runs


def write_runs(runs_tree, runs: dict) -> None:
    runs_tree.extend({k: np.array([runs[k]], dtype=dtype) for k, dtype in RUNS_FIELDS.items()})
