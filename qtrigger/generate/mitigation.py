"""Pileup mitigation of the clustering inputs, as the L1 trigger does it (docs/generation.md, "Pileup mitigation").

Three schemes, selected per sample and recorded in ``Runs/pileupMitigation`` (:data:`MITIGATION_CODES`):

- ``none``: every visible particle is clustered (the mu = 0 definition; raw jets).
- ``run3`` (no tracks at L1; the default below mu = :data:`PHASE2_FROM_MU`): calorimeter-like inputs. Charged
  particles below :data:`CURL_PT_GEV` curl up before the calorimeter and neutral particles below
  :data:`NEUTRAL_ET_MIN_GEV` stay under the tower threshold; neither counts. Each jet's pT then loses
  rho * A, with rho the event's grid-median pT density (:func:`grid_rho`) and A = pi R^2.
- ``phase2`` (L1 tracks; the default from mu = :data:`PHASE2_FROM_MU`): an L1 primary vertex from a pT-weighted
  z0 histogram of tracks (:func:`l1_vertex`); tracks (charged, pT >= :data:`TRACK_PT_GEV`) outside
  3 sigma_z0(pT) of it are removed before clustering (charged-hadron subtraction); the particles without a track
  (neutrals, soft charged) pass the ``run3`` thresholds and the jets lose rho * A of their density only.

With either scheme a jet needs a constituent of pT >= a seed threshold (:data:`JET_SEED_GEV`, per scheme; the
generator's ``--jet-seed-gev`` overrides it), as an L1 jet needs a seed tower: jets made of pileup's soft particles
alone do not pass. The Run-3-like seed is 5 GeV: on 2,000 paired ttbar events at mu = 60 a 4 / 5 / 6 GeV seed
leaves 10.8 / 8.9 / 7.2 % of the jets above 20 GeV without a mu = 0 jet and loses 1.2 / 2.2 / 4.2 % of the
mu = 0 jets above 30 GeV (docs/generation.md).

Everything is array code over a batch; ghosts (flavour tags, kinds >= ``K_BHAD``) always pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qtrigger.generate.events import JET_R, K_BHAD
from qtrigger.generate.tracks import Resolution

MITIGATION_CODES = {"none": 0, "run3": 1, "phase2": 2}
PHASE2_FROM_MU = 140.0  # HL-LHC pileup: L1 has tracks there
CURL_PT_GEV = 1.0  # 3.8 T: charged particles below ~1 GeV do not reach the barrel calorimeter
NEUTRAL_ET_MIN_GEV = 1.0  # a calorimeter-like deposit threshold
TRACK_PT_GEV = 2.0  # L1 tracks (Phase-2 track finder)
TRACK_ETA_MAX = 2.4
TRACK_PT_CAP_GEV = 128.0  # a mismeasured high-pT track must not pick the vertex
VERTEX_HALF_RANGE_CM = 15.0
VERTEX_BINS = 256  # 1.17 mm bins, as the Phase-2 "FastHisto" vertex finder
VERTEX_WINDOW_BINS = 3
ASSOCIATION_SIGMAS = 3.0
# a mitigated jet needs one constituent above it, as an L1 jet needs a seed tower (GeV, per scheme)
JET_SEED_GEV = {"none": 0.0, "run3": 5.0, "phase2": 4.0}
RHO_ETA_MAX = 3.0
RHO_CELLS = (12, 12)  # eta x phi cells of 0.5 x 0.52 over |eta| < 3
JET_AREA = math.pi * JET_R**2


def resolve_mitigation(name: str, mu: float) -> str:
    """The scheme for ``--mitigation name`` at pileup ``mu``: ``auto`` is none at mu = 0, ``run3`` below
    :data:`PHASE2_FROM_MU`, ``phase2`` from it."""
    if name != "auto":
        return name
    if mu <= 0:
        return "none"
    return "phase2" if mu >= PHASE2_FROM_MU else "run3"


@dataclass
class Mitigated:
    """One batch's mitigated inputs: the particles to cluster, each event's jet pT offset (rho * A, GeV),
    rho (GeV per unit area), the L1 vertex z (cm; NaN without tracks in the acceptance) and the raw inputs: what
    the detector sees (the calorimeter-like thresholds) without pileup mitigation."""

    inputs: dict
    pt_offset: np.ndarray
    rho: np.ndarray
    l1_vertex_z: np.ndarray
    raw_inputs: dict


def mitigate(inputs: dict, n_events: int, scheme: str, resolution: Resolution) -> Mitigated:
    """Apply ``scheme`` to merged clustering inputs (:func:`qtrigger.generate.jets.merge_inputs`)."""
    vertex = l1_vertex(inputs, n_events)
    if scheme == "none":
        return Mitigated(inputs, np.zeros(n_events), np.zeros(n_events), vertex, inputs)
    pt = np.hypot(inputs["px"], inputs["py"])
    ghost = inputs["kind"] >= K_BHAD
    charged = inputs["charge"] != 0
    seen = ghost | np.where(charged, pt >= CURL_PT_GEV, pt >= NEUTRAL_ET_MIN_GEV)
    raw = select_inputs(inputs, seen, n_events)
    if scheme == "phase2":
        track = _is_track(inputs, pt)
        z_vertex = np.nan_to_num(vertex, nan=0.0)[inputs["evt"]]
        window = ASSOCIATION_SIGMAS * resolution.sigma_cm(pt)[1]
        from_vertex = np.abs(inputs["z0"] - z_vertex) < window
        keep = np.where(track, from_vertex, seen)
        density = keep & ~track  # charged pileup is gone: only the untracked particles carry a density
        mitigated = select_inputs(inputs, keep, n_events)
    elif scheme == "run3":
        keep = density = seen
        mitigated = raw
    else:
        raise ValueError(f"unknown pileup mitigation {scheme!r}; expected one of {', '.join(MITIGATION_CODES)}")
    rho = grid_rho(inputs, pt, density & ~ghost, n_events)
    return Mitigated(mitigated, rho * JET_AREA, rho, vertex, raw)


def _is_track(inputs: dict, pt: np.ndarray) -> np.ndarray:
    eta = np.arcsinh(inputs["pz"] / np.maximum(pt, 1e-12))
    return (inputs["charge"] != 0) & (pt >= TRACK_PT_GEV) & (np.abs(eta) < TRACK_ETA_MAX) & (inputs["kind"] < K_BHAD)


def l1_vertex(inputs: dict, n_events: int) -> np.ndarray:
    """Per event, the L1 primary vertex z (cm): the 3-bin window of the track z0 histogram with the most
    capped track pT, then the pT-weighted mean z0 of its tracks; NaN for an event without tracks."""
    pt = np.hypot(inputs["px"], inputs["py"])
    track = _is_track(inputs, pt) & (np.abs(inputs["z0"]) < VERTEX_HALF_RANGE_CM)
    z0, evt = inputs["z0"][track], inputs["evt"][track]
    weight = np.minimum(pt[track], TRACK_PT_CAP_GEV)
    width = 2 * VERTEX_HALF_RANGE_CM / VERTEX_BINS
    cell = np.clip(((z0 + VERTEX_HALF_RANGE_CM) / width).astype(np.int64), 0, VERTEX_BINS - 1)
    hist = np.bincount(evt * VERTEX_BINS + cell, weights=weight, minlength=n_events * VERTEX_BINS)
    hist = hist.reshape(n_events, VERTEX_BINS)
    windows = sum(hist[:, k:VERTEX_BINS - VERTEX_WINDOW_BINS + 1 + k] for k in range(VERTEX_WINDOW_BINS))
    first = windows.argmax(axis=1)
    inside = (cell >= first[evt]) & (cell < first[evt] + VERTEX_WINDOW_BINS)
    sum_w = np.bincount(evt[inside], weights=weight[inside], minlength=n_events)
    sum_wz = np.bincount(evt[inside], weights=(weight * z0)[inside], minlength=n_events)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sum_w > 0, sum_wz / sum_w, np.nan)


def grid_rho(inputs: dict, pt: np.ndarray, use: np.ndarray, n_events: int) -> np.ndarray:
    """Per event, the median pT per unit area over the eta-phi cells of |eta| < :data:`RHO_ETA_MAX`
    (FastJet's grid-median estimator): robust to the few cells a hard jet fills."""
    n_eta, n_phi = RHO_CELLS
    eta = np.arcsinh(inputs["pz"] / np.maximum(pt, 1e-12))
    use = use & (np.abs(eta) < RHO_ETA_MAX)
    i_eta = np.clip(((eta[use] + RHO_ETA_MAX) / (2 * RHO_ETA_MAX) * n_eta).astype(np.int64), 0, n_eta - 1)
    phi = np.arctan2(inputs["py"][use], inputs["px"][use])
    i_phi = np.clip(((phi + np.pi) / (2 * np.pi) * n_phi).astype(np.int64), 0, n_phi - 1)
    n_cells = n_eta * n_phi
    cell = inputs["evt"][use] * n_cells + i_eta * n_phi + i_phi
    grid = np.bincount(cell, weights=pt[use], minlength=n_events * n_cells).reshape(n_events, n_cells)
    cell_area = (2 * RHO_ETA_MAX / n_eta) * (2 * np.pi / n_phi)
    return np.median(grid, axis=1) / cell_area


def select_inputs(inputs: dict, keep: np.ndarray, n_events: int) -> dict:
    """The merged inputs restricted to ``keep`` (event order kept, offsets rebuilt)."""
    out = {k: v[keep] for k, v in inputs.items() if k != "offsets"}
    counts = np.bincount(out["evt"], minlength=n_events).astype(np.int64)
    out["offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return out
