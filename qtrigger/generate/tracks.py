"""Vertices and track impact parameters: beam spot, straight-line d0/z0, L1-track smearing.

Everything here draws from numpy generators of its own, seeded per chunk from the chunk's
Pythia seed (:class:`TrackRandom`), so Pythia's random stream, and with it every other
branch, is the same with or without this module. Definitions and numbers: docs/generation.md
("Vertices, impact parameters and jet candidates").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MM_TO_CM = 0.1

# Beam spot (cm): LHC Run-2/3-like luminous region, centred on the nominal beam line.
BEAM_X0_CM = 0.0
BEAM_Y0_CM = 0.0
BEAM_SIGMA_X_CM = 10e-4  # 10 um
BEAM_SIGMA_Y_CM = 10e-4  # 10 um
BEAM_SIGMA_Z_CM = 3.5  # 3.5 cm

# Default (pT-dependent) L1-track resolutions, sigma(pT) = a (+) b / pT (in quadrature), um and
# um*GeV. An assumption, not a CMS measurement: see docs/generation.md.
D0_RES_A_UM, D0_RES_B_UM_GEV = 40.0, 400.0
Z0_RES_A_UM, Z0_RES_B_UM_GEV = 500.0, 1500.0

TRACK_RNG_TAG = 7  # np.random.default_rng([chunk Pythia seed, 7, stream])
STREAMS = {"pv": 0, "pu_vertex": 1, "hard_smear": 2, "pu_smear": 3}


class TrackRandom:
    """One independent numpy generator per use, seeded ``[pythia_seed, 7, stream]``.

    Separate streams (hard vertices, pileup vertices, hard-track smearing, pileup-track
    smearing), each drawn in event order, make the draws independent of the batch size.
    """

    def __init__(self, pythia_seed: int):
        self.rng = {name: np.random.default_rng([int(pythia_seed), TRACK_RNG_TAG, k]) for name, k in STREAMS.items()}

    def vertices(self, n: int, stream: str) -> np.ndarray:
        """(n, 3) interaction points in cm drawn from the beam spot."""
        u = self.rng[stream].standard_normal((int(n), 3))
        return np.column_stack([
            BEAM_X0_CM + BEAM_SIGMA_X_CM * u[:, 0],
            BEAM_Y0_CM + BEAM_SIGMA_Y_CM * u[:, 1],
            BEAM_SIGMA_Z_CM * u[:, 2],
        ])

    def noise(self, n: int, stream: str) -> np.ndarray:
        """(n, 2) standard normals: column 0 for d0, column 1 for z0 (row-major: batch-size invariant)."""
        return self.rng[stream].standard_normal((int(n), 2))


@dataclass(frozen=True)
class Resolution:
    """Track d0 and z0 resolutions: a fixed sigma (um) each, or None for the pT-dependent default."""

    d0_um: float | None = None
    z0_um: float | None = None

    def sigma_cm(self, pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sigma_d0, sigma_z0) in cm for tracks of transverse momentum ``pt`` (GeV)."""
        pt = np.maximum(np.asarray(pt, dtype=np.float64), 1e-3)
        d0 = (np.full_like(pt, self.d0_um) if self.d0_um is not None
              else np.hypot(D0_RES_A_UM, D0_RES_B_UM_GEV / pt))
        z0 = (np.full_like(pt, self.z0_um) if self.z0_um is not None
              else np.hypot(Z0_RES_A_UM, Z0_RES_B_UM_GEV / pt))
        return d0 * 1e-4, z0 * 1e-4

    def runs_values(self) -> dict:
        """``Runs`` entries: the fixed sigma in um, or -1 for the pT-dependent default."""
        return {"trackD0Res_um": -1.0 if self.d0_um is None else float(self.d0_um),
                "trackZ0Res_um": -1.0 if self.z0_um is None else float(self.z0_um)}


def straight_line_ip(x, y, z, px, py, pz, x0: float = BEAM_X0_CM, y0: float = BEAM_Y0_CM):
    """(d0, z0) of straight lines from (x, y, z) along (px, py, pz) to the beam line at (x0, y0).

    d0 = ((y - y0) px - (x - x0) py) / pT (the sign of CMS ``reco::Track::dxy``), |d0| the
    transverse distance of closest approach; z0 = z at that point (from z = 0). Units of x.
    """
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        ux, uy = px / pt, py / pt
        dx, dy = x - x0, y - y0
        d0 = dy * ux - dx * uy
        s = -(dx * ux + dy * uy)  # transverse path length to the point of closest approach
        z0 = z + s * pz / pt
    zero = pt == 0
    return np.where(zero, 0.0, d0), np.where(zero, z, z0)


def measured_ip(pos: np.ndarray, px, py, pz, charged: np.ndarray, resolution: Resolution, noise: np.ndarray):
    """(d0, z0, sigma_d0) in cm for particles at ``pos`` (n, 3; cm): smeared for charged, 0 otherwise.

    ``noise`` holds one (d0, z0) row of standard normals per *charged* particle, in order.
    """
    n = len(px)
    d0, z0, sig = np.zeros(n), np.zeros(n), np.ones(n)
    c = np.flatnonzero(charged)
    td0, tz0 = straight_line_ip(pos[c, 0], pos[c, 1], pos[c, 2], px[c], py[c], pz[c])
    s_d0, s_z0 = resolution.sigma_cm(np.hypot(px[c], py[c]))
    d0[c] = td0 + s_d0 * noise[:, 0]
    z0[c] = tz0 + s_z0 * noise[:, 1]
    sig[c] = s_d0
    return d0, z0, sig
