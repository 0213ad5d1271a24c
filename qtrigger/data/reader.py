"""NanoAOD jets in, one row per jet out: reading, selection, truth labels, event split.

The reader streams ``Events`` trees chunk by chunk with ``uproot.iterate``, reads only the
branches it needs, and flattens jagged ``Jet_*`` branches with awkward (no Python loops
over events or jets). Each jet keeps its event's global index, its file and sample, so
that splits are by event and trigger decisions can be combined per event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from qtrigger.errors import QTriggerError, one_line

log = logging.getLogger(__name__)

WEIGHT_BRANCH = "genWeight"


@dataclass
class JetTable:
    """Selected jets (one row each) plus per-event bookkeeping for every event read.

    ``features`` holds the raw physical values (float32, as NanoAOD stores them) in
    ``feature_names`` order;
    ``truth`` the integer truth branch (e.g. ``Jet_hadronFlavour``). Per jet, ``event``
    indexes the per-event arrays (``event_sample``, ``event_weight``, ``event_file``,
    ``event_entry``), which include events where no jet passed the selection.
    """

    feature_names: list[str]
    features: np.ndarray
    truth: np.ndarray
    event: np.ndarray
    jet_index: np.ndarray
    event_sample: np.ndarray
    event_weight: np.ndarray
    event_file: np.ndarray
    event_entry: np.ndarray
    files: list[str]
    samples: list[str]
    dropped_nonfinite: int = 0
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    nonfinite: dict[str, int] = field(default_factory=dict)  # per branch: dropped jets with NaN/inf in it
    nonfinite_events: np.ndarray | None = None  # events that lost a jet to data.on_nonfinite=drop
    nonfinite_unit: str = "jets"  # what dropped_nonfinite counts: "jets", or "events" (event-level inputs)

    @property
    def n_jets(self) -> int:
        """Number of selected jets."""
        return len(self.truth)

    @property
    def n_events(self) -> int:
        """Number of events read (with or without selected jets)."""
        return len(self.event_sample)

    @property
    def jet_sample(self) -> np.ndarray:
        """Sample index of each jet."""
        return self.event_sample[self.event]

    @property
    def jet_weight(self) -> np.ndarray:
        """Event weight of each jet's event."""
        return self.event_weight[self.event]

    def column(self, name: str) -> np.ndarray:
        """A per-jet feature column by branch name."""
        return self.features[:, self.feature_names.index(name)]

    def subset(self, jet_mask: np.ndarray) -> "JetTable":
        """The same events with only the jets where ``jet_mask`` is true."""
        return JetTable(
            feature_names=self.feature_names,
            features=self.features[jet_mask],
            truth=self.truth[jet_mask],
            event=self.event[jet_mask],
            jet_index=self.jet_index[jet_mask],
            event_sample=self.event_sample,
            event_weight=self.event_weight,
            event_file=self.event_file,
            event_entry=self.event_entry,
            files=self.files,
            samples=self.samples,
            dropped_nonfinite=self.dropped_nonfinite,
            extra={k: v[jet_mask] for k, v in self.extra.items()},
            nonfinite=dict(self.nonfinite),
            nonfinite_events=self.nonfinite_events,
            nonfinite_unit=self.nonfinite_unit,
        )

    def without_events(self, events: np.ndarray) -> "JetTable":
        """The table without ``events`` (indexes) and their jets; the other events are renumbered."""
        keep = np.ones(self.n_events, bool)
        keep[np.asarray(events, np.int64)] = False
        table = self.subset(keep[self.event])
        table.event = (np.cumsum(keep) - 1)[table.event]
        for name in ("event_sample", "event_weight", "event_file", "event_entry"):
            setattr(table, name, getattr(self, name)[keep])
        table.nonfinite_events = None
        return table

    def drop_nonfinite_events(self) -> "JetTable":
        """Event-level inputs: without every event that lost a jet to ``data.on_nonfinite=drop`` (its slots would
        be filled by the next jets, which the trigger would not see there); ``dropped_nonfinite`` counts events."""
        events = np.unique(self.nonfinite_events if self.nonfinite_events is not None else np.zeros(0, np.int64))
        if not len(events):
            self.nonfinite_unit = "events"
            return self
        table = self.without_events(events)
        table.dropped_nonfinite, table.nonfinite_unit = len(events), "events"
        return table

    def drop_nonfinite(self, jets: np.ndarray, by_branch: dict[str, int]) -> "JetTable":
        """The table without the ``jets`` (mask) whose inputs hold NaN/inf, counted per branch
        (``data.on_nonfinite=drop`` for inputs read after the jets, e.g. constituents)."""
        table = self.subset(~jets)
        table.dropped_nonfinite += int(jets.sum())
        for branch, count in by_branch.items():
            table.nonfinite[branch] = table.nonfinite.get(branch, 0) + int(count)
        return table


def open_events_tree(path: str, tree: str = "Events"):
    """Open ``path`` and return its tree, with one-line errors for non-ROOT files or a missing tree."""
    import uproot

    try:
        handle = uproot.open(path)
    except FileNotFoundError:
        raise QTriggerError(f"{path}: file not found") from None
    except Exception as err:  # uproot raises various errors for non-ROOT content
        raise QTriggerError(f"{path}: not a readable ROOT file ({type(err).__name__})") from None
    check_complete_root_file(path, handle)
    if tree not in handle:
        keys = sorted({k.split(";")[0] for k in handle.keys(recursive=False)})
        raise QTriggerError(f"{path}: no TTree {tree!r} (found: {', '.join(keys) or 'nothing'})")
    try:
        return handle[tree]
    except (OSError, ValueError, uproot.DeserializationError) as err:
        raise QTriggerError(f"{path}: truncated or corrupt ROOT file ({type(err).__name__}: {one_line(err)})") from None


def check_complete_root_file(path: str, handle) -> None:
    """A ROOT file's header records where it ends (``fEND``): a shorter file was cut (copy or download)."""
    import os

    end, size = getattr(handle.file, "fEND", None), os.path.getsize(path)
    if end is not None and size < end:
        raise QTriggerError(f"{path}: truncated or corrupt ROOT file ({size} bytes, its header says {end})")


def check_branches(files: list[str], branches: list[str], tree: str = "Events") -> None:
    """Raise one error listing every missing branch by name and file."""
    problems = []
    for path in files:
        present = set(open_events_tree(path, tree).keys())
        missing = [b for b in branches if b not in present]
        if missing:
            problems.append(f"{path} lacks {', '.join(missing)}")
    if problems:
        raise QTriggerError("missing branches: " + "; ".join(problems))


def collection_branch(name: str, collection: str = "Jet") -> str:
    """The file branch of a per-jet name: ``Jet_<field>`` is read from ``<collection>_<field>``."""
    return f"{collection}_{name[len('Jet_'):]}" if name.startswith("Jet_") else name


def check_collection(files: list[str], collection: str, tree: str = "Events") -> dict[str, set[str]]:
    """Each file's branch names; one line naming the collection and the first file without it (no
    ``<collection>_pt``), with the collections that file has."""
    keys = {}
    for path in files:
        keys[path] = set(open_events_tree(path, tree).keys())
        if f"{collection}_pt" not in keys[path]:
            found = sorted({k[1:] for k in keys[path] if k.startswith("n") and f"{k[1:]}_pt" in keys[path]})
            raise QTriggerError(f"{path}: no {collection} collection (features.collection: {collection}; no "
                                f"{collection}_pt branch); collections in the file: {', '.join(found) or 'none'}")
    return keys


def read_jets(
    samples: dict[str, list[str]],
    feature_names: list[str],
    truth_branch: str | None = "Jet_hadronFlavour",
    pt_min: float = 20.0,
    abs_eta_max: float = 2.5,
    tree: str = "Events",
    step_size: str | int = "50 MB",
    max_events: int | None = None,
    on_nonfinite: str = "drop",
    progress: bool = False,
    threads: int = 1,
    collection: str = "Jet",
) -> JetTable:
    """Read, flatten and select jets from ``{sample name: [files]}``.

    ``collection``: the NanoAOD collection the per-jet names (``Jet_<field>``, and ``truth_branch``) are read
    from, as ``<collection>_<field>`` (e.g. ``L1Jet``); where the file has ``<collection>_bx`` only objects of
    bunch crossing 0 are read (the triggering crossing), and the jets' positions count those only.
    ``truth_branch=None`` reads no truth (0 for every jet).

    Selection: ``Jet_pt > pt_min`` and ``|Jet_eta| < abs_eta_max``. Jets with a NaN/inf
    feature are dropped and counted (``on_nonfinite="drop"``) or rejected with an error.
    ``max_events`` caps the events read per sample. ``threads`` > 1 decompresses
    baskets in parallel (zlib/lzma release the GIL).
    """
    jet_branches = list(dict.fromkeys([*feature_names, *([truth_branch] if truth_branch else []), "Jet_pt", "Jet_eta"]))
    source = {name: collection_branch(name, collection) for name in jet_branches}
    files = [f for paths in samples.values() for f in paths]
    if not files:
        raise QTriggerError("no input files given")
    keys = check_collection(files, collection, tree)
    check_branches(files, list(source.values()), tree)
    has_weight = {path: WEIGHT_BRANCH in keys[path] for path in files}
    bx_branch = {path: f"{collection}_bx" if f"{collection}_bx" in keys[path] else None for path in files}

    parts: list[dict[str, np.ndarray]] = []
    event_offset = 0
    cut = _JetCut(pt_min, abs_eta_max, on_nonfinite)
    for sample_index, (sample, paths) in enumerate(samples.items()):
        remaining = max_events
        for path in paths:
            if remaining is not None and remaining <= 0:
                break
            file_index = files.index(path)
            branches = [*source.values(), *([WEIGHT_BRANCH] if has_weight[path] else []),
                        *([bx_branch[path]] if bx_branch[path] else [])]
            for chunk in _iterate_file(path, tree, branches, step_size, remaining, progress, threads):
                flat = _flatten_chunk(chunk, source, feature_names, truth_branch, has_weight[path], cut, path,
                                      bx_branch[path])
                n_events = len(flat["event_weight"])
                flat["event"] += event_offset
                flat["nonfinite_event"] += event_offset
                flat["event_sample"] = np.full(n_events, sample_index, np.int16)
                flat["event_file"] = np.full(n_events, file_index, np.int32)
                event_offset += n_events
                if remaining is not None:
                    remaining -= n_events
                parts.append(flat)
    table = _concatenate(parts, feature_names, files, list(samples))
    table.dropped_nonfinite, table.nonfinite = cut.dropped_nonfinite, dict(cut.by_branch)
    table.nonfinite_events = np.concatenate([p["nonfinite_event"] for p in parts]) if parts else np.zeros(0, np.int64)
    if cut.dropped_nonfinite:
        log.warning("%s", nonfinite_text(table))
    if table.n_jets == 0:
        raise QTriggerError(
            f"selection pt > {pt_min:g} GeV and |eta| < {abs_eta_max:g} keeps no jets "
            f"out of {cut.input_jets} in {table.n_events} events ({', '.join(files)})"
        )
    return table


@dataclass
class _JetCut:
    """The per-jet selection, applied chunk by chunk, with its counters."""

    pt_min: float
    abs_eta_max: float
    on_nonfinite: str
    input_jets: int = 0
    dropped_nonfinite: int = 0
    by_branch: dict[str, int] = field(default_factory=dict)

    def mask(self, features: np.ndarray, pt: np.ndarray, eta: np.ndarray, path: str,
             names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Jets passing pT/eta with finite features, and the dropped non-finite ones (counted per branch,
        or refused with ``on_nonfinite="error"``)."""
        self.input_jets += len(pt)
        finite_kinematics = np.isfinite(pt) & np.isfinite(eta)
        finite = np.isfinite(features).all(axis=1) & finite_kinematics
        kinematic = (pt > self.pt_min) & (np.abs(eta) < self.abs_eta_max)
        bad = ~finite & (kinematic | ~finite_kinematics)  # a NaN pT or eta would otherwise fail the cut unseen
        if not bad.any():
            return finite & kinematic, bad
        columns = {"Jet_pt": pt, "Jet_eta": eta}
        columns.update(zip(names or [], features.T))
        by_branch = {b: int((~np.isfinite(v[bad])).sum()) for b, v in columns.items()}
        by_branch = {b: n for b, n in by_branch.items() if n}
        check_nonfinite(path, int(bad.sum()), by_branch, self.on_nonfinite, "features")
        self.dropped_nonfinite += int(bad.sum())
        for branch, count in by_branch.items():
            self.by_branch[branch] = self.by_branch.get(branch, 0) + count
        return finite & kinematic, bad


def branch_counts(by_branch: dict[str, int]) -> str:
    """``Jet_eta: 7 jets, Jet_pt: 2 jets`` (a jet may count under several branches)."""
    return ", ".join(f"{b}: {n} jets" for b, n in sorted(by_branch.items()))


def check_nonfinite(path: str, n_jets: int, by_branch: dict[str, int], on_nonfinite: str, what: str) -> None:
    """With ``data.on_nonfinite=error``, one line naming the file, the count and the branches."""
    if n_jets and on_nonfinite == "error":
        raise QTriggerError(f"{path}: {n_jets} jets have NaN/inf {what} (data.on_nonfinite=error): "
                            f"{branch_counts(by_branch)}")


def nonfinite_text(table: "JetTable") -> str:
    """What ``data.on_nonfinite=drop`` dropped, for the terminal and report.md ('' when nothing)."""
    if not table.dropped_nonfinite:
        return ""
    return (f"dropped {table.dropped_nonfinite} {table.nonfinite_unit} with NaN/inf inputs (data.on_nonfinite=drop; "
            f"{branch_counts(table.nonfinite)})")


def _iterate_file(path, tree, branches, step_size, max_entries, progress, threads=1):
    """Chunks of one file's tree as awkward arrays, with the entry offset of each chunk."""
    import uproot
    from tqdm import tqdm

    events_tree = open_events_tree(path, tree)
    stop = events_tree.num_entries if max_entries is None else min(max_entries, events_tree.num_entries)
    bar = tqdm(total=stop, unit="ev", desc=path.rsplit("/", 1)[-1], disable=not progress, leave=False)
    executor = uproot.ThreadPoolExecutor(threads) if threads > 1 else None
    chunks = events_tree.iterate(branches, step_size=step_size, entry_stop=stop, report=True,
                                 decompression_executor=executor)
    while True:
        try:
            arrays, report = next(chunks)
        except StopIteration:
            break
        except (OSError, ValueError, uproot.DeserializationError) as err:  # truncated or damaged baskets
            raise QTriggerError(f"{path}: truncated or corrupt ROOT file ({type(err).__name__}: {one_line(err)})") from None
        arrays.attrs["entry_start"] = report.tree_entry_start
        bar.update(len(arrays))
        yield arrays
    bar.close()


def _flatten_chunk(chunk, source: dict[str, str], feature_names, truth_branch, has_weight, cut: _JetCut, path: str,
                   bx_branch: str | None = None) -> dict:
    """Selected jets of one chunk, one row each (vectorised), plus the chunk's per-event arrays.

    ``source`` maps each per-jet name to its file branch; with ``bx_branch`` only bunch crossing 0 is kept.
    Features stay float32, as NanoAOD stores them; selection happens here so that only
    selected jets are ever concatenated.
    """
    import awkward as ak

    n_events = len(chunk)
    counts = ak.to_numpy(ak.num(chunk[source["Jet_pt"]], axis=1))
    check_jet_counts(chunk, [*source.values(), *([bx_branch] if bx_branch else [])], counts, path, source["Jet_pt"])
    columns = {b: ak.to_numpy(ak.flatten(chunk[src], axis=1)) for b, src in source.items()}
    if bx_branch is not None:
        in_crossing = ak.to_numpy(ak.flatten(chunk[bx_branch], axis=1)) == 0
        every_event = np.repeat(np.arange(n_events, dtype=np.int64), counts)
        columns = {b: v[in_crossing] for b, v in columns.items()}
        counts = np.bincount(every_event[in_crossing], minlength=n_events)
    features = np.empty((len(columns["Jet_pt"]), len(feature_names)), np.float32)
    for index, name in enumerate(feature_names):
        features[:, index] = columns[name]
    keep, dropped = cut.mask(features, columns["Jet_pt"], columns["Jet_eta"], path, feature_names)
    local_event = np.repeat(np.arange(n_events, dtype=np.int64), counts)
    jet_index = (np.arange(len(local_event)) - np.repeat(np.cumsum(counts) - counts, counts)).astype(np.int32)
    weight = ak.to_numpy(chunk[WEIGHT_BRANCH]).astype(np.float64) if has_weight else np.ones(n_events)
    entry_start = chunk.attrs["entry_start"]
    return {
        "features": features[keep],
        "truth": columns[truth_branch][keep].astype(np.int64) if truth_branch else np.zeros(int(keep.sum()), np.int64),
        "pt": columns["Jet_pt"][keep].astype(np.float32),
        "eta": columns["Jet_eta"][keep].astype(np.float32),
        "event": local_event[keep],
        "jet_index": jet_index[keep],
        "event_weight": weight,
        "event_entry": np.arange(entry_start, entry_start + n_events, dtype=np.int64),
        "nonfinite_event": np.unique(local_event[dropped]),
    }


def check_jet_counts(chunk, jet_branches, counts: np.ndarray, path: str, pt_branch: str = "Jet_pt") -> None:
    """Every jagged jet branch must hold as many jets per event as ``pt_branch`` (else one line naming it)."""
    import awkward as ak

    for branch in jet_branches:
        other = ak.to_numpy(ak.num(chunk[branch], axis=1))
        if not np.array_equal(other, counts):
            event = int(np.flatnonzero(other != counts)[0])
            entry = chunk.attrs.get("entry_start", 0) + event
            raise QTriggerError(f"{path}: {branch} has {other[event]} jets in entry {entry} where {pt_branch} has "
                                f"{counts[event]} ({int((other != counts).sum())} entries differ in this chunk); "
                                "jagged jet branches must agree per event")


def _concatenate(parts, feature_names, files, samples) -> JetTable:
    def cat(key, dtype, width=None):
        if not parts:
            return np.zeros((0, width) if width else 0, dtype)
        return np.concatenate([p[key] for p in parts]).astype(dtype, copy=False)

    table = JetTable(
        feature_names=list(feature_names),
        features=cat("features", np.float32, len(feature_names)),
        truth=cat("truth", np.int64),
        event=cat("event", np.int64),
        jet_index=cat("jet_index", np.int32),
        event_sample=cat("event_sample", np.int16),
        event_weight=cat("event_weight", np.float64),
        event_file=cat("event_file", np.int32),
        event_entry=cat("event_entry", np.int64),
        files=files,
        samples=samples,
    )
    table.extra = {"pt": cat("pt", np.float32), "eta": cat("eta", np.float32)}
    return table


def make_labels(truth: np.ndarray, mode: str, signal: list[int], classes: dict[str, list[int]] | None) -> np.ndarray:
    """Integer labels from truth: binary 1 = signal; multiclass = index into ``classes``.

    A multiclass truth value that belongs to no class raises an error naming it.
    """
    if mode == "binary":
        return np.isin(truth, signal).astype(np.int64)
    labels = np.full(len(truth), -1, np.int64)
    for index, values in enumerate(classes.values()):
        labels[np.isin(truth, values)] = index
    if (labels < 0).any():
        unknown = sorted(set(truth[labels < 0].tolist()))
        raise QTriggerError(f"labels.classes: truth values {unknown} belong to no class {list(classes)}")
    return labels


@dataclass
class EventSplit:
    """Per-jet boolean masks for the train/val/test splits (split by event)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    event_part: np.ndarray  # per event: 0 train, 1 val, 2 test


def split_by_event(table: JetTable, train: float, val: float, seed: int) -> EventSplit:
    """Assign whole events to train/val/test with a seeded uniform draw per event."""
    draw = np.random.default_rng(seed).random(table.n_events)
    event_part = np.where(draw < train, 0, np.where(draw < train + val, 1, 2)).astype(np.int8)
    jet_part = event_part[table.event]
    return EventSplit(jet_part == 0, jet_part == 1, jet_part == 2, event_part)
