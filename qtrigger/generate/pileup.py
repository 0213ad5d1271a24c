"""Pileup overlays of one chunk: Poisson(mu) inelastic interactions per event, from a second Pythia (direct) or
drawn from a premixed library (:mod:`qtrigger.generate.library`), each at its own beam-spot vertex.

Randomness (all seeded from the chunk's Pythia seed, never from the hard event's stream, so a mu = 0 file is
unchanged): the interaction counts come from ``default_rng([pythia_seed, 7, 5])``, drawn for the whole chunk
at once (:func:`pileup_counts`, also used to plan the library draws before anything runs); vertices and track
smearing from the :class:`~qtrigger.generate.tracks.TrackRandom` streams ``pu_vertex`` and ``pu_smear``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtrigger.generate.events import (
    ChargeTable,
    _select,
    _track_ip,
    _visible,
    _visible_kind,
    pileup_particles,
)
from qtrigger.generate.tracks import TRACK_RNG_TAG, Resolution, TrackRandom

COUNT_STREAM = 5  # default_rng([pythia_seed, 7, 5]): interactions per event


def pileup_counts(pythia_seed: int, mu: float, n_events: int) -> np.ndarray:
    """Overlay interactions per event of one chunk: Poisson(mu), seeded by the chunk."""
    return np.random.default_rng([int(pythia_seed), TRACK_RNG_TAG, COUNT_STREAM]).poisson(mu, size=int(n_events))


@dataclass
class Overlay:
    """One batch's overlay: clustering pieces and, per event, interactions, hardest pTHat and its vertex z."""

    pieces: list[dict]
    n_int: np.ndarray
    max_pthat: np.ndarray
    hardest_z: np.ndarray

    def branches(self) -> dict:
        """The per-event ``Pileup_*`` branches (:data:`~qtrigger.generate.output.PILEUP_FIELDS`)."""
        return {"Pileup_nInt": self.n_int.astype(np.int32), "Pileup_maxPtHat": self.max_pthat.astype(np.float32)}


def hardest_per_event(owner: np.ndarray, pthat: np.ndarray, vz: np.ndarray, n_events: int):
    """(max pTHat, z of that interaction's vertex) per event; 0 and 0 for an event without interactions."""
    max_pthat, hardest_z = np.zeros(n_events), np.zeros(n_events)
    if len(owner):
        order = np.lexsort((pthat, owner))
        last = np.flatnonzero(np.r_[owner[order][1:] != owner[order][:-1], True])
        pick = order[last]
        max_pthat[owner[pick]] = pthat[pick]
        hardest_z[owner[pick]] = vz[pick]
    return max_pthat, hardest_z


def empty_piece() -> dict:
    """A clustering piece without particles (a batch of empty crossings)."""
    p = {k: np.zeros(0) for k in ("px", "py", "pz", "E")}
    p["id"] = np.zeros(0, dtype=np.int32)
    return _select(p, np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64), np.int8(0))


def direct_overlay(pu_pythia, counts: np.ndarray, charges: ChargeTable, tracks: TrackRandom,
                   resolution: Resolution) -> Overlay:
    """``counts[i]`` interactions from ``pu_pythia`` on event ``i``, each at its own beam-spot vertex."""
    n_events, total = len(counts), int(counts.sum())
    owner = np.repeat(np.arange(n_events, dtype=np.int64), counts)
    if total == 0:
        return Overlay([], counts, np.zeros(n_events), np.zeros(n_events))
    p = pileup_particles(pu_pythia, total)
    vertices = tracks.vertices(total, "pu_vertex")
    vis = _visible(p)
    idx = np.flatnonzero(vis)
    charge = charges(p["id"][idx])
    ip = _track_ip(p, idx, charge, vertices[p["evt"][idx]], tracks, "pu_smear", resolution)
    piece = _select(p, vis, owner[p["evt"]], _visible_kind(p["id"][idx], charge), ip=ip)
    return Overlay([piece], counts, *hardest_per_event(owner, p["pthat"], vertices[:, 2], n_events))


def library_overlay(library: dict, draws: np.ndarray, counts: np.ndarray, tracks: TrackRandom,
                    resolution: Resolution) -> Overlay:
    """Library interactions ``draws`` (indices, in event order, ``counts[i]`` on event ``i``) overlaid each at
    a new beam-spot vertex: the stored track parameters (relative to the interaction's own vertex) are moved
    to it exactly (straight lines) and smeared like the direct path's."""
    n_events, total = len(counts), int(counts.sum())
    owner = np.repeat(np.arange(n_events, dtype=np.int64), counts)
    if total == 0:
        return Overlay([], counts, np.zeros(n_events), np.zeros(n_events))
    vertices = tracks.vertices(total, "pu_vertex")
    n_part = library["counts"][draws]
    first = np.repeat(library["start"][draws] - np.cumsum(np.r_[0, n_part[:-1]]), n_part)
    rows = first + np.arange(int(n_part.sum()))
    which = np.repeat(np.arange(total), n_part)  # the draw each particle belongs to
    cols = {k: library[k][rows].astype(np.float64) for k in ("px", "py", "pz", "E")}
    charge = library["charge"][rows]
    d0, z0, sigma = _moved_ip(library["d0"][rows], library["z0"][rows], cols, charge != 0, vertices[which],
                              tracks, resolution)
    piece = {**cols, "E_true": cols["E"].copy(), "pt_true": np.hypot(cols["px"], cols["py"]),
             "pdg": library["pdg"][rows].astype(np.int32), "evt": owner[which], "kind": library["kind"][rows],
             "charge": charge.astype(np.int8), "d0": d0, "z0": z0, "sigma_d0": sigma}
    pthat = library["pthat"][draws].astype(np.float64)
    return Overlay([piece], counts, *hardest_per_event(owner, pthat, vertices[:, 2], n_events))


def _moved_ip(d0_rel, z0_rel, cols: dict, charged: np.ndarray, vertex: np.ndarray, tracks: TrackRandom,
              resolution: Resolution):
    """(d0, z0, sigma_d0) of library tracks whose interaction now sits at ``vertex`` (per particle, cm):
    d0 = d0_rel + v_y u_x - v_x u_y, z0 = z0_rel + v_z - (v_x u_x + v_y u_y) p_z / p_T, then smeared."""
    n = len(charged)
    d0, z0, sig = np.zeros(n), np.zeros(n), np.ones(n)
    c = np.flatnonzero(charged)
    pt = np.hypot(cols["px"][c], cols["py"][c])
    ux, uy = cols["px"][c] / pt, cols["py"][c] / pt
    vx, vy, vz = vertex[c, 0], vertex[c, 1], vertex[c, 2]
    true_d0 = d0_rel[c] + vy * ux - vx * uy
    true_z0 = z0_rel[c] + vz - (vx * ux + vy * uy) * cols["pz"][c] / pt
    noise = tracks.noise(len(c), "pu_smear")
    s_d0, s_z0 = resolution.sigma_cm(pt)
    d0[c] = true_d0 + s_d0 * noise[:, 0]
    z0[c] = true_z0 + s_z0 * noise[:, 1]
    sig[c] = s_d0
    return d0, z0, sig
