"""Reader throughput against bare uproot, per compression; prints JSON.

Writes a multi-file sample (>= 5 million jets across >= 8 files, by default) in a
temporary directory by replicating the shipped generated sample's events, once with
ZLIB and once with LZMA (what production NanoAOD uses), then reads it

- with the project reader (`qtrigger.data.reader.read_jets`, 1 and 2 decompression threads), and
- with the baseline `uproot.concatenate(files, branches, library="ak")` followed by
  `ak.flatten` of each branch into numpy,

alternating the order, after one warm-up read of each file (warm page cache for both).
`peak_rss_mb` is the reader's peak resident memory increase over the process baseline,
measured in a fresh subprocess; `output_mb` is the size of the reader's output arrays.

Usage: python benchmarks/ingest.py [--jets 5000000] [--files 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BRANCHES = ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_chHEF", "Jet_neHEF", "Jet_chEmEF", "Jet_neEmEF",
            "Jet_muEF", "Jet_nConstituents", "Jet_hadronFlavour"]


def write_sample(directory: Path, n_jets: int, n_files: int, compression) -> list[str]:
    """Replicate the default sample's events into n_files files holding >= n_jets jets in total."""
    import awkward as ak
    import uproot

    source = [uproot.open(REPO / "data" / "default" / name)["Events"].arrays(BRANCHES + ["genWeight"])
              for name in ("ttbar.root", "qcd.root")]
    events = ak.concatenate(source)
    jets_per_copy = int(ak.sum(ak.num(events["Jet_pt"])))
    copies_per_file = int(np.ceil(n_jets / n_files / jets_per_copy))
    files = []
    for index in range(n_files):
        path = directory / f"sample_{index}.root"
        with uproot.recreate(path, compression=compression) as out:
            tree = out.mktree("Events", {"Jet": ak.zip({b[4:]: events[b] for b in BRANCHES}).type.content,
                                         "genWeight": "float32"})
            for _ in range(copies_per_file):
                tree.extend({"Jet": ak.zip({b[4:]: events[b] for b in BRANCHES}), "genWeight": events["genWeight"]})
        files.append(str(path))
    return files


def read_project(files: list[str], threads: int) -> tuple[int, float]:
    from qtrigger.data.reader import read_jets

    start = time.perf_counter()
    table = read_jets({"bench": files}, BRANCHES[:10], pt_min=-1.0, abs_eta_max=1e9, step_size="200 MB", threads=threads)
    return table.n_jets, time.perf_counter() - start


def read_baseline(files: list[str]) -> tuple[int, float]:
    import awkward as ak
    import uproot

    start = time.perf_counter()
    arrays = uproot.concatenate(files, BRANCHES, library="ak")
    columns = {b: ak.to_numpy(ak.flatten(arrays[b])) for b in BRANCHES}
    return len(columns["Jet_pt"]), time.perf_counter() - start


def peak_rss(files: list[str], threads: int) -> dict:
    """Peak RSS increase of the project reader and the size of its output, in a fresh process."""
    code = f"""
import json, sys
import numpy as np
sys.path.insert(0, {str(REPO)!r})
import qtrigger.data.reader as d
import uproot, awkward

def hwm_kb():  # VmHWM belongs to this process's memory map (ru_maxrss would be inherited across exec)
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])

before = hwm_kb()
t = d.read_jets({{'b': {files!r}}}, {BRANCHES[:10]!r}, pt_min=-1.0, abs_eta_max=1e9, step_size='200 MB', threads={threads})
after = hwm_kb()
out = t.features.nbytes + t.truth.nbytes + t.event.nbytes + t.jet_index.nbytes + sum(v.nbytes for v in t.extra.values())
print(json.dumps({{'peak_rss_mb': (after - before) / 1024, 'output_mb': out / 2**20}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    import uproot

    parser = argparse.ArgumentParser()
    parser.add_argument("--jets", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="qtrigger-ingest-") as tmp:
        for label, compression in (("ZLIB", uproot.ZLIB(1)), ("LZMA", uproot.LZMA(9))):
            directory = Path(tmp) / label
            directory.mkdir()
            files = write_sample(directory, args.jets, args.files, compression)
            read_baseline(files)  # warm the page cache
            project_1, project_2, bare = [], [], []
            for _ in range(args.repeats):  # alternate the order
                n_bare, t_bare = read_baseline(files)
                n_1, t_1 = read_project(files, 1)
                n_2, t_2 = read_project(files, 2)
                assert n_bare == n_1 == n_2
                bare.append(n_bare / t_bare)
                project_1.append(n_1 / t_1)
                project_2.append(n_2 / t_2)
            memory = peak_rss(files, 1)
            results[label] = {
                "files": len(files), "jets": n_bare,
                "file_mb": round(sum(Path(f).stat().st_size for f in files) / 2**20, 1),
                "jets_per_s": round(max(project_1)), "jets_per_s_2_threads": round(max(project_2)),
                "bare_uproot_jets_per_s": round(max(bare)), "ratio": round(max(project_1) / max(bare), 3),
                "ratio_2_threads": round(max(project_2) / max(bare), 3),
                "peak_rss_mb": round(memory["peak_rss_mb"], 1), "output_mb": round(memory["output_mb"], 1),
                "peak_over_output": round(memory["peak_rss_mb"] / memory["output_mb"], 2),
            }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
