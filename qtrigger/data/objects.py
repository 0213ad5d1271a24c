"""L1 object collections of an event, as the Global Trigger receives them: NanoAOD ``<collection>_<field>`` branches
of bunch crossing 0, for the event-level object groups (``features.objects``; issue 32).

Both CMSSW L1 NanoAOD schemas are read: the reduced one (central NanoAOD: pt, eta, phi, bx, some words) and the full
one with the int16 ``hw*`` words. Every read is a whole-array operation; events keep their order.
"""

from __future__ import annotations

import numpy as np

from qtrigger.config import ObjectGroup
from qtrigger.data.reader import check_collection, open_events_tree
from qtrigger.errors import QTriggerError

OBJECT_FIELDS = ("pt", "eta", "phi", "hwPt", "hwEta", "hwPhi")  # read where present (kinematics, GT words)
SUM_FIELDS = ("pt", "phi", "hwPt", "hwPhi", "etSumType")


def read_object_groups(path: str, groups: list[ObjectGroup], tree: str = "Events",
                       max_events: int | None = None) -> dict[str, dict[str, object]]:
    """``{collection: {field: jagged awkward array}}`` of every group's collection in ``path``, bunch crossing 0 only
    (where ``<collection>_bx`` exists). One-line errors name the file for a missing collection, a sum group on a
    collection without ``etSumType``, or a requested ``etSumType`` that no bunch-crossing-0 entry of the file has."""
    import awkward as ak

    keys = check_collection_groups(path, groups, tree)
    events = open_events_tree(path, tree)
    out = {}
    for group in groups:
        fields = [f for f in (SUM_FIELDS if group.is_sum else OBJECT_FIELDS) if f"{group.collection}_{f}" in keys]
        fields += [f for f in group.fields if f not in fields]  # present: checked by check_collection_groups
        if group.is_sum and "etSumType" not in fields:
            raise QTriggerError(f"{path}: {group.collection} has no {group.collection}_etSumType branch; "
                                "features.objects types need an L1EtSum-like collection")
        bx = f"{group.collection}_bx" if f"{group.collection}_bx" in keys else None
        branches = [f"{group.collection}_{f}" for f in fields] + ([bx] if bx else [])
        arrays = events.arrays(branches, entry_stop=max_events)
        in_crossing = arrays[bx] == 0 if bx else None
        out[group.collection] = {f: (arrays[f"{group.collection}_{f}"][in_crossing] if bx else
                                     arrays[f"{group.collection}_{f}"]) for f in fields}
        if group.is_sum:
            _check_sum_types(path, group, ak.to_numpy(ak.flatten(out[group.collection]["etSumType"])))
    return out


def check_object_files(files: list[str], groups: list[ObjectGroup], tree: str = "Events") -> None:
    """Before any work: one line naming the first file and group collection it lacks, or an ``etSumType`` of a sum
    group that no bunch-crossing-0 entry of the file has (reads only the sums' type and crossing branches)."""
    import awkward as ak

    for path in files:
        keys = set(open_events_tree(path, tree).keys())
        for group in groups:
            if f"{group.collection}_pt" not in keys:
                found = sorted({k[1:] for k in keys if k.startswith("n") and f"{k[1:]}_pt" in keys})
                raise QTriggerError(f"{path}: no {group.collection} collection (features.objects; no "
                                    f"{group.collection}_pt branch); collections in the file: {', '.join(found) or 'none'}")
            _check_fields(path, group, keys)
            if not group.is_sum:
                continue
            kind = f"{group.collection}_etSumType"
            if kind not in keys:
                raise QTriggerError(f"{path}: {group.collection} has no {kind} branch; features.objects types need an "
                                    "L1EtSum-like collection")
            bx = f"{group.collection}_bx" if f"{group.collection}_bx" in keys else None
            arrays = open_events_tree(path, tree).arrays([kind] + ([bx] if bx else []))
            types = arrays[kind][arrays[bx] == 0] if bx else arrays[kind]
            _check_sum_types(path, group, ak.to_numpy(ak.flatten(types)))


def check_collection_groups(path: str, groups: list[ObjectGroup], tree: str = "Events") -> set[str]:
    """The file's branch names; one line naming the first group collection the file lacks."""
    keys = set()
    for group in groups:
        keys = check_collection([path], group.collection, tree)[path]
    keys = keys or set(open_events_tree(path, tree).keys())
    for group in groups:
        _check_fields(path, group, keys)
    return keys


def _check_fields(path: str, group: ObjectGroup, keys: set[str]) -> None:
    """One line naming the first extra field (``fields``) of ``group`` that the file has no branch for."""
    missing = [f for f in group.fields if f"{group.collection}_{f}" not in keys]
    if missing:
        found = sorted(k.split("_", 1)[1] for k in keys if k.startswith(f"{group.collection}_"))
        raise QTriggerError(f"{path}: no {group.collection}_{missing[0]} branch (features.objects {group.collection} "
                            f"fields); {group.collection} fields in the file: {', '.join(found)}")


def _check_sum_types(path: str, group: ObjectGroup, present: np.ndarray) -> None:
    found = sorted(set(present.tolist()))
    missing = {name: code for name, code in group.types.items() if code not in found}
    if missing:
        name, code = next(iter(missing.items()))
        raise QTriggerError(f"{path}: {group.collection} has no etSumType {code} ({name}) in bunch crossing 0 "
                            f"(features.objects types); types in the file: {', '.join(map(str, found)) or 'none'}")
