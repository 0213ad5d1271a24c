"""Jets from a batch of events: FastJet anti-kt clustering of the visible particles, jet kinematics and
flavour, the prompt-track summaries and the leading constituents, as flat columns for the output."""

from __future__ import annotations

import numpy as np

from qtrigger.generate.events import (
    CAND_CLASS,
    DISPLACED_SIGNIFICANCE,
    JET_R,
    K_BHAD,
    K_CHAD,
    K_PARTON,
    KIND_NAMES,
    MAX_CANDIDATES,
    N_KINDS,
    PROMPT_D0_MAX_CM,
    RANKED_SIGNIFICANCES,
    TRACK_PT_MIN,
)
from qtrigger.generate.output import CAND_FIELDS, CAND_GRID, JET_FIELDS, round_grid, round_mantissa

# --------------------------------------------------------------------------- clustering


def merge_inputs(pieces: list[dict], n_events: int) -> dict:
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


def lifetime_signed_significance(d0, sigma_d0, track_phi, jet_phi):
    """|d0| / sigma_d0, positive when the track's point of closest approach to the beam line lies
    ahead of the beam line along the jet's transverse direction (decay products of a particle
    flying with the jet), negative behind it.

    With CMS ``dxy`` signs the point of closest approach is d0 * (-sin(phi_t), cos(phi_t)); its
    projection on the jet direction is d0 * sin(phi_jet - phi_t).
    """
    sign = np.where(d0 * np.sin(jet_phi - track_phi) < 0, -1.0, 1.0)
    return sign * np.abs(d0) / sigma_d0


def _track_summaries(cols: dict, n_jets: int, jet_of: np.ndarray, glob: np.ndarray, kind: np.ndarray,
                     inputs: dict) -> None:
    """``nDispTrk``, ``dispTrkPt`` and the three largest lifetime-signed d0 significances (clipped at 0)
    over the jet's prompt tracks: charged constituents with pT >= 2 GeV and |d0| < 1 mm."""
    pt = inputs["pt_true"][glob]
    d0 = inputs["d0"][glob]
    track = (kind < 5) & (inputs["charge"][glob] != 0) & (pt >= TRACK_PT_MIN) & (np.abs(d0) < PROMPT_D0_MAX_CM)
    t = np.flatnonzero(track)
    jet, pt = jet_of[t], pt[t]
    track_phi = np.arctan2(inputs["py"][glob[t]], inputs["px"][glob[t]])
    sig = lifetime_signed_significance(d0[t], inputs["sigma_d0"][glob[t]], track_phi, cols["phi"][jet])
    disp = sig >= DISPLACED_SIGNIFICANCE
    cols["nDispTrk"] = np.bincount(jet[disp], minlength=n_jets)
    cols["dispTrkPt"] = round_mantissa(np.bincount(jet[disp], weights=pt[disp], minlength=n_jets))
    order = np.lexsort((-sig, jet))  # by jet, then significance descending
    jet, sig = jet[order], sig[order]
    rank = np.arange(len(jet)) - np.searchsorted(jet, jet)
    for r, name in enumerate(RANKED_SIGNIFICANCES):
        ranked = np.zeros(n_jets)
        at = rank == r
        ranked[jet[at]] = np.maximum(sig[at], 0.0)
        cols[name] = round_mantissa(ranked)


def _candidates(inputs: dict, n_events: int, glob: np.ndarray, kind: np.ndarray, jet_pos: np.ndarray,
                jet_evt: np.ndarray, first_jet: np.ndarray) -> tuple[dict, np.ndarray]:
    """The leading ``MAX_CANDIDATES`` visible constituents (by pT) of each selected jet.

    ``jet_pos``: each constituent's jet as a position in the selected, sorted jet list (-1 =
    not selected); ``jet_evt``/``first_jet``: that list's events and each event's first position.
    """
    sel = np.flatnonzero((kind < 5) & (jet_pos >= 0))
    pt = inputs["pt_true"][glob[sel]]
    order = np.lexsort((-pt, jet_pos[sel]))  # by jet, then pT descending
    sel, pt, jet = sel[order], pt[order], jet_pos[sel][order]
    rank = np.arange(len(jet)) - np.searchsorted(jet, jet)  # position within the jet
    keep = rank < MAX_CANDIDATES
    sel, pt, jet = sel[keep], pt[keep], jet[keep]
    g = glob[sel]
    evt = jet_evt[jet]
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(inputs["pz"][g] / pt)
    cand = {
        "pt": round_mantissa(pt),
        "eta": round_grid(eta, CAND_GRID["eta"]),
        "phi": round_grid(np.arctan2(inputs["py"][g], inputs["px"][g]), CAND_GRID["phi"]),
        "charge": inputs["charge"][g],
        "class": CAND_CLASS[kind[sel]],
        "d0": round_grid(inputs["d0"][g], CAND_GRID["d0"]),
        "z0": round_grid(inputs["z0"][g], CAND_GRID["z0"]),
        "jetIdx": jet - first_jet[evt],
    }
    cand = {name: cand[name].astype(dtype) for name, dtype in CAND_FIELDS.items()}
    return cand, np.bincount(evt, minlength=n_events).astype(np.int64)


def jet_table(fastjet, inputs: dict, n_events: int, jet_pt_min: float, jet_eta_max: float,
              pt_offset: np.ndarray | None = None, seed_pt_min: float = 0.0):
    """Per-jet columns (selected, sorted by pt within each event), jets per event, and the jet
    candidates ``(columns, candidates per event)``. ``pt_offset`` (GeV per event, pileup mitigation's
    rho * A) is subtracted from every jet's pT, its mass scaled alike, before the selection; a jet also
    needs a visible constituent of pT >= ``seed_pt_min`` (the L1 jet finder's seed)."""
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
    if pt_offset is not None:
        _subtract(cols, pt_offset[jet_event])
    e_vis = energy[:, :5].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(energy[:, :5] / e_vis[:, None], 0.0, 1.0)
    for k, name in enumerate(KIND_NAMES):
        cols[name] = frac[:, k]
    cols["nConstituents"] = number[:, :5].sum(axis=1)
    cols["hadronFlavour"] = np.where(number[:, K_BHAD] > 0, 5, np.where(number[:, K_CHAD] > 0, 4, 0))
    cols["partonFlavour"] = _parton_flavour(n_jets, jet_of, kind, inputs["pdg"][glob], inputs["pt_true"][glob])
    _track_summaries(cols, n_jets, jet_of, glob, kind, inputs)

    keep = (cols["pt"] > jet_pt_min) & (np.abs(cols["eta"]) < jet_eta_max) & (e_vis > 0)
    if seed_pt_min > 0:
        keep &= _leading_constituent_pt(n_jets, jet_of, glob, kind, inputs) >= seed_pt_min
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((-cols["pt"][idx], jet_event[idx]))]
    cols = {name: cols[name][idx].astype(dtype) for name, dtype in JET_FIELDS.items()}
    counts = np.bincount(jet_event[idx], minlength=n_events).astype(np.int64)
    position = np.full(n_jets, -1, dtype=np.int64)
    position[idx] = np.arange(len(idx))
    first_jet = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    cands = _candidates(inputs, n_events, glob, kind, position[jet_of], jet_event[idx], first_jet)
    return cols, counts, cands


def _leading_constituent_pt(n_jets: int, jet_of: np.ndarray, glob: np.ndarray, kind: np.ndarray,
                            inputs: dict) -> np.ndarray:
    visible = kind < K_BHAD
    lead = np.zeros(n_jets)
    np.maximum.at(lead, jet_of[visible], inputs["pt_true"][glob[visible]])
    return lead


def _subtract(cols: dict, offset: np.ndarray) -> None:
    """Jet pT minus ``offset`` (at least 0), the mass scaled by the same factor; eta and phi unchanged."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.clip(1.0 - offset / cols["pt"], 0.0, 1.0)
    cols["pt"] = cols["pt"] * np.nan_to_num(scale)
    cols["mass"] = cols["mass"] * np.nan_to_num(scale)


def raw_jet_summaries(fastjet, inputs: dict, n_events: int, jet_pt_min: float, jet_eta_max: float) -> dict:
    """Per event, the jets of every visible particle without mitigation (pT > ``jet_pt_min``,
    |eta| < ``jet_eta_max``): their count, scalar pT sum and the leading pT (0 without jets)."""
    four, jet_event, _, _ = _cluster(fastjet, inputs, jet_pt_min)
    cols = _jet_kinematics(four)
    keep = (cols["pt"] > jet_pt_min) & (np.abs(cols["eta"]) < jet_eta_max)
    evt, pt = jet_event[keep], cols["pt"][keep]
    lead = np.zeros(n_events)
    np.maximum.at(lead, evt, pt)
    return {"RawJet_n": np.bincount(evt, minlength=n_events).astype(np.int32),
            "RawJet_ht": np.bincount(evt, weights=pt, minlength=n_events).astype(np.float32),
            "RawJet_leadPt": lead.astype(np.float32)}


def to_awkward(cols: dict, counts: np.ndarray, fields: dict = JET_FIELDS):
    """Record array (events x jets, or x candidates with ``CAND_FIELDS``) from flat columns and per-event counts."""
    import awkward as ak

    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    content = ak.contents.RecordArray([ak.contents.NumpyArray(cols[k]) for k in fields], list(fields))
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), content))
