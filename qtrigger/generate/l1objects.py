"""L1-like trigger objects of a generated batch, in CMSSW's NanoAOD L1 schema (docs/generation.md, "L1 objects").

The collections and their branch types follow CMSSW's ``PhysicsTools/NanoAOD/python/l1trig_cff.py`` (full L1 nano:
float ``pt``/``eta``/``phi``, int16 hardware words, the BXVector table's int32 ``bx``; ``L1EtSum`` with int32
``hwPt``/``hwPhi``/``etSumType``):

- ``L1Jet``: the generated jets (mitigated at mu > 0) with an L1-like response and resolution (:class:`L1Settings`).
- ``L1EG``: clusters of electron and photon transverse momentum around local-maximum EM towers, a simple isolation
  word from the calorimeter activity around them.
- ``L1Tau``: clusters of calorimeter transverse momentum around local-maximum towers, narrow (3 x 3) with an isolation
  bit, as the Stage-2 tau algorithm's candidates are (most of them are jets).
- ``L1Mu``: muons with an L1 muon pT resolution and a quality word.
- ``L1EtSum``: ETT, MET and MET with HF from calorimeter-like towers of the visible particles; HTT and MHT from the L1
  jets above the HT jet threshold (``etSumType`` codes of ``l1t::EtSum::EtSumType``).

Every word uses the Global Trigger's LSBs (pT 0.5 GeV; calorimeter eta 0.0435 and phi 2 pi / 144; muon eta 0.010875 and
phi 2 pi / 576) and the floats are the words' physical values, so a reader may use either. All objects are bx 0.
The smearing draws from numpy generators of their own (``default_rng([pythia seed, 11, stream])``), one per
collection, in event order: no other branch changes when the objects are written.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from qtrigger.generate.events import K_CHEM, K_MU, K_NEEM

L1_RNG_TAG = 11  # default_rng([chunk Pythia seed, 11, stream]); the track streams use tag 7
L1_STREAMS = {"jet": 0, "eg": 1, "mu": 2, "tau": 3}
PT_LSB = 0.5  # GeV, every object and sum
CALO_ETA_LSB = 0.0435
CALO_PHI_STEPS = 144
MU_ETA_LSB = 0.010875
MU_PHI_STEPS = 576
TOWER_DETA = 0.087  # calorimeter-like towers: 0.087 x 2 pi / 72 (one trigger tower's size in the barrel)
TOWER_PHI_STEPS = 72
TOWER_ETA_BINS = 116  # |eta| < 5.046: the HF's reach
TOWER_HWPT_MAX = 511  # 9-bit tower ET
HWPT_MAX = {"jet": 2047, "eg": 511, "tau": 511, "mu": 511, "sum": 4095}  # saturation of each object's pT word
ETSUM_TYPES = {"ETT": 0, "HTT": 1, "MET": 2, "MHT": 3, "METHF": 8}  # l1t::EtSum::EtSumType (kTotalEt, ...)
EG_CORE, EG_ISO = 1, 2  # half-widths in towers of the EG cluster (3 x 3) and of its isolation window (5 x 5)
EG_ISO_LOOSE, EG_ISO_TIGHT = 0.3, 0.1  # hwIso bit 0 / bit 1: isolation ET below this fraction of the cluster ET
TAU_ISO = 0.2  # L1Tau hwIso 1: the 5 x 5 calorimeter ET outside the 3 x 3 below this fraction of the cluster ET


@dataclass(frozen=True)
class L1Settings:
    """The L1-like response of every object; defaults are documented in docs/generation.md ("L1 objects").

    Jets: pT_L1 = ``jet_response`` * pT * (1 + sigma z), sigma = sqrt(``jet_stochastic``^2 / pT + ``jet_constant``^2)
    (pT in GeV, z a standard normal). e/gamma: the same form with ``eg_stochastic``/``eg_constant``. Muons: a relative
    Gaussian resolution per region, barrel |eta| < 0.83, overlap < 1.24, endcap (``mu_resolution``)."""

    jet_response: float = 1.0
    jet_stochastic: float = 1.0  # sqrt(GeV): 15 % at 50 GeV with the constant term
    jet_constant: float = 0.05
    eg_stochastic: float = 0.15
    eg_constant: float = 0.02
    eg_seed_gev: float = 2.0  # an EM tower seeds an EG candidate from this ET
    eg_eta_max: float = 2.5
    tau_seed_gev: float = 5.0  # a calorimeter tower seeds a tau candidate from this ET
    tau_eta_max: float = 2.5
    mu_pt_min: float = 3.0  # GeV: softer muons do not reach the muon stations
    mu_eta_max: float = 2.4
    mu_resolution: tuple[float, float, float] = (0.15, 0.20, 0.25)
    mu_qual_eta: float = 2.1  # hwQual 12 (single-muon quality) below it, 8 (double-muon quality) above
    ht_jet_pt_min: float = 30.0  # HTT and MHT: L1 jets with pT > 30 GeV and |eta| < 2.4
    ht_jet_eta_max: float = 2.4
    met_eta_max: float = 3.0  # ETT and MET: towers with |eta| < 3; METHF: every tower (|eta| < 5)
    max_jets: int = 12  # objects per bunch crossing the Global Trigger receives
    max_eg: int = 12
    max_tau: int = 12
    max_mu: int = 8

    def runs_values(self) -> dict:
        """``Runs`` entries (files with L1 objects): the jet response and resolution terms."""
        return {"l1JetResponse": self.jet_response, "l1JetResStochastic": self.jet_stochastic,
                "l1JetResConstant": self.jet_constant}

    def as_dict(self) -> dict:
        """Plain values (a chunk spec travels to dask workers as a dict)."""
        return asdict(self)


class L1Random:
    """One numpy generator per collection, seeded ``[pythia_seed, 11, stream]``, drawn in event order."""

    def __init__(self, pythia_seed: int):
        self.rng = {name: np.random.default_rng([int(pythia_seed), L1_RNG_TAG, k]) for name, k in L1_STREAMS.items()}

    def normal(self, n: int, stream: str) -> np.ndarray:
        """``n`` standard normals from ``stream``."""
        return self.rng[stream].standard_normal(int(n))


# --------------------------------------------------------------------------- words


def phi_word(phi: np.ndarray, steps: int) -> np.ndarray:
    """The phi word in 0..steps-1 (step 2 pi / steps, rounded)."""
    return np.mod(np.rint(np.asarray(phi, np.float64) / (2 * math.pi / steps)).astype(np.int64), steps)


def phi_value(word: np.ndarray, steps: int) -> np.ndarray:
    """A phi word's angle in [-pi, pi), as CMSSW decodes it (word * step, minus 2 pi from pi on)."""
    word = np.asarray(word, np.int64)
    return np.where(word >= steps // 2, word - steps, word) * (2 * math.pi / steps)


def pt_word(pt: np.ndarray, saturation: int) -> np.ndarray:
    """pT / 0.5 GeV truncated, as the hardware does (with a 1e-9 LSB tolerance: a float sum of whole LSBs such as
    a single tower's MET lands on its word), saturated at ``saturation``."""
    pt = np.maximum(np.asarray(pt, np.float64), 0.0)
    return np.clip(np.floor(pt / PT_LSB + 1e-9), 0, saturation).astype(np.int64)


def _calo_object(pt_gev, eta, phi, kind: str) -> dict:
    """Words and their physical values of calorimeter objects."""
    hw_pt = pt_word(pt_gev, HWPT_MAX[kind])
    hw_eta = np.rint(np.asarray(eta, np.float64) / CALO_ETA_LSB).astype(np.int64)
    hw_phi = phi_word(phi, CALO_PHI_STEPS)
    return {"pt": hw_pt * PT_LSB, "eta": hw_eta * CALO_ETA_LSB, "phi": phi_value(hw_phi, CALO_PHI_STEPS),
            "hwPt": hw_pt, "hwEta": hw_eta, "hwPhi": hw_phi}


def _relative_sigma(pt: np.ndarray, stochastic: float, constant: float) -> np.ndarray:
    return np.sqrt(stochastic**2 / np.maximum(pt, 1e-9) + constant**2)


def _per_event(fields: dict, evt: np.ndarray, n_events: int, cap: int, dtypes: dict) -> tuple[dict, np.ndarray]:
    """Objects with a non-zero pT word, pT-ordered within each event (ties keep their order), at most ``cap`` per
    event: (columns cast to ``dtypes``, objects per event)."""
    keep = np.flatnonzero(fields["hwPt"] > 0)
    keep = keep[np.lexsort((-fields["hwPt"][keep], evt[keep]))]
    rank = np.arange(len(keep)) - np.searchsorted(evt[keep], evt[keep])
    keep = keep[rank < cap]
    base = {"hwQual": 0, "hwIso": 0, "bx": 0}
    cols = {name: (fields[name][keep] if name in fields else np.full(len(keep), base[name])).astype(dtype)
            for name, dtype in dtypes.items()}
    return cols, np.bincount(evt[keep], minlength=n_events).astype(np.int64)


# --------------------------------------------------------------------------- jets


def l1_jets(cols: dict, njet: np.ndarray, settings: L1Settings, rand: L1Random) -> dict:
    """L1 jet words of every generated jet (before the per-event cap): one normal per jet in event order."""
    pt = np.asarray(cols["pt"], np.float64)
    z = rand.normal(len(pt), "jet")
    smeared = settings.jet_response * pt * (1 + _relative_sigma(pt, settings.jet_stochastic, settings.jet_constant) * z)
    out = _calo_object(smeared, cols["eta"], cols["phi"], "jet")
    out["evt"] = np.repeat(np.arange(len(njet), dtype=np.int64), njet)
    return out


# --------------------------------------------------------------------------- towers and e/gamma


@dataclass
class Towers:
    """Sparse calorimeter-like towers of one batch: sorted keys (event, eta bin, phi bin), their ET (GeV) from every
    calorimeter particle and from electrons and photons only."""

    key: np.ndarray
    et: np.ndarray
    em_et: np.ndarray

    @property
    def evt(self) -> np.ndarray:
        return self.key // (TOWER_ETA_BINS * TOWER_PHI_STEPS)

    @property
    def ieta(self) -> np.ndarray:
        return (self.key // TOWER_PHI_STEPS) % TOWER_ETA_BINS

    @property
    def iphi(self) -> np.ndarray:
        return self.key % TOWER_PHI_STEPS

    def lookup(self, key: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` of the towers ``key`` (0 for an empty tower; keys < 0 are outside the calorimeter)."""
        if not len(self.key):
            return np.zeros(len(key))
        at = np.minimum(np.searchsorted(self.key, key), len(self.key) - 1)
        return np.where((key >= 0) & (self.key[at] == key), values[at], 0.0)

    def neighbour(self, key: np.ndarray, d_eta: int, d_phi: int) -> np.ndarray:
        """The key ``d_eta``, ``d_phi`` towers away (phi wraps; -1 beyond the eta range)."""
        evt = key // (TOWER_ETA_BINS * TOWER_PHI_STEPS)
        ieta, iphi = (key // TOWER_PHI_STEPS) % TOWER_ETA_BINS, key % TOWER_PHI_STEPS
        ieta = ieta + d_eta
        out = (evt * TOWER_ETA_BINS + ieta) * TOWER_PHI_STEPS + np.mod(iphi + d_phi, TOWER_PHI_STEPS)
        return np.where((ieta >= 0) & (ieta < TOWER_ETA_BINS), out, -1)

    def centre(self) -> tuple[np.ndarray, np.ndarray]:
        """(eta, phi) of each tower's centre."""
        eta = (self.ieta - TOWER_ETA_BINS // 2 + 0.5) * TOWER_DETA
        return eta, (self.iphi + 0.5) * (2 * math.pi / TOWER_PHI_STEPS)


def towers(inputs: dict) -> Towers:
    """Towers of the calorimeter particles (hadrons, electrons, photons; no muons, neutrinos or ghosts) with
    |eta| < 5.046: each particle's pT in the tower of its direction."""
    calo = np.flatnonzero(inputs["kind"] < K_MU)
    px, py, pz = inputs["px"][calo], inputs["py"][calo], inputs["pz"][calo]
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    ieta = np.floor(eta / TOWER_DETA).astype(np.int64) + TOWER_ETA_BINS // 2
    inside = (ieta >= 0) & (ieta < TOWER_ETA_BINS) & (pt > 0)
    iphi = np.floor(np.mod(np.arctan2(py, px), 2 * math.pi) / (2 * math.pi / TOWER_PHI_STEPS)).astype(np.int64)
    iphi = np.minimum(iphi, TOWER_PHI_STEPS - 1)
    key = (inputs["evt"][calo] * TOWER_ETA_BINS + ieta) * TOWER_PHI_STEPS + iphi
    em = np.isin(inputs["kind"][calo], (K_CHEM, K_NEEM))  # electrons and photons
    uniq, inverse = np.unique(key[inside], return_inverse=True)
    et = np.bincount(inverse, weights=pt[inside], minlength=len(uniq))
    em_et = np.bincount(inverse, weights=np.where(em[inside], pt[inside], 0.0), minlength=len(uniq))
    return Towers(uniq, et, em_et)


def _window(tw: Towers, key: np.ndarray, values: np.ndarray, half: int) -> np.ndarray:
    """Sum of ``values`` over the (2 half + 1)^2 towers around each ``key``."""
    return sum(tw.lookup(tw.neighbour(key, de, dp), values) for de in range(-half, half + 1)
               for dp in range(-half, half + 1))


def _is_local_maximum(tw: Towers, seeds: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Seeds whose ``values`` (a tower ET) is >= each earlier neighbour's and > each later one's in the 3 x 3 (one
    seed per tie)."""
    ok = np.ones(len(seeds), bool)
    for de in (-1, 0, 1):
        for dp in (-1, 0, 1):
            if de == dp == 0:
                continue
            other = tw.lookup(tw.neighbour(tw.key[seeds], de, dp), values)
            ok &= values[seeds] > other if (de, dp) > (0, 0) else values[seeds] >= other
    return ok


def l1_eg(tw: Towers, settings: L1Settings, rand: L1Random) -> dict:
    """e/gamma candidates: EM towers of ET >= ``eg_seed_gev`` in |eta| < ``eg_eta_max`` that are local maxima;
    ET = the 3 x 3 EM ET (smeared), position = the seed tower's centre, hwIso bit 0 (loose) / bit 1 (tight) when the
    5 x 5 calorimeter ET outside the 3 x 3 is below 30 % / 10 % of the cluster ET."""
    eta_c, phi_c = tw.centre()
    seeds = np.flatnonzero((tw.em_et >= settings.eg_seed_gev) & (np.abs(eta_c) < settings.eg_eta_max))
    seeds = seeds[_is_local_maximum(tw, seeds, tw.em_et)]
    key = tw.key[seeds]
    cluster = _window(tw, key, tw.em_et, EG_CORE)
    iso = _window(tw, key, tw.et, EG_ISO) - _window(tw, key, tw.et, EG_CORE)
    z = rand.normal(len(seeds), "eg")  # seeds are in key order: by event
    smeared = cluster * (1 + _relative_sigma(cluster, settings.eg_stochastic, settings.eg_constant) * z)
    out = _calo_object(smeared, eta_c[seeds], phi_c[seeds], "eg")
    out["hwIso"] = (iso < EG_ISO_LOOSE * cluster).astype(np.int64) + 2 * (iso < EG_ISO_TIGHT * cluster)
    out["evt"] = tw.evt[seeds]
    return out


def l1_taus(tw: Towers, settings: L1Settings, rand: L1Random) -> dict:
    """Tau candidates: towers of calorimeter ET >= ``tau_seed_gev`` in |eta| < ``tau_eta_max`` that are local maxima
    of the calorimeter ET; ET = the 3 x 3 calorimeter ET, smeared as jets are (``jet_stochastic``,
    ``jet_constant``); position = the seed tower's centre; hwIso 1 when the 5 x 5 calorimeter ET outside the 3 x 3
    is below 20 % of the cluster ET."""
    eta_c, phi_c = tw.centre()
    seeds = np.flatnonzero((tw.et >= settings.tau_seed_gev) & (np.abs(eta_c) < settings.tau_eta_max))
    seeds = seeds[_is_local_maximum(tw, seeds, tw.et)]
    key = tw.key[seeds]
    cluster = _window(tw, key, tw.et, EG_CORE)
    iso = _window(tw, key, tw.et, EG_ISO) - cluster
    z = rand.normal(len(seeds), "tau")  # seeds are in key order: by event
    smeared = cluster * (1 + _relative_sigma(cluster, settings.jet_stochastic, settings.jet_constant) * z)
    out = _calo_object(smeared, eta_c[seeds], phi_c[seeds], "tau")
    out["hwIso"] = (iso < TAU_ISO * cluster).astype(np.int64)
    out["evt"] = tw.evt[seeds]
    return out


# --------------------------------------------------------------------------- muons


def l1_muons(inputs: dict, settings: L1Settings, rand: L1Random) -> dict:
    """Muons of pT >= ``mu_pt_min`` and |eta| < ``mu_eta_max``, pT smeared by the region's resolution; the uGMT's pT
    word is pT / 0.5 GeV + 1 (pT = 0.5 (hwPt - 1)); hwQual 12 below |eta| = ``mu_qual_eta``, 8 above; hwCharge 1 for
    a negative muon, 0 for a positive one."""
    pt = inputs["pt_true"]
    eta = np.arcsinh(inputs["pz"] / np.maximum(pt, 1e-12))
    sel = np.flatnonzero((inputs["kind"] == K_MU) & (pt >= settings.mu_pt_min) & (np.abs(eta) < settings.mu_eta_max))
    pt, eta = pt[sel], eta[sel]
    barrel, overlap, endcap = settings.mu_resolution
    sigma = np.where(np.abs(eta) < 0.83, barrel, np.where(np.abs(eta) < 1.24, overlap, endcap))
    smeared = pt * (1 + sigma * rand.normal(len(sel), "mu"))  # inputs are ordered by event
    hw_pt = np.minimum(pt_word(smeared, HWPT_MAX["mu"] - 1) + 1, HWPT_MAX["mu"])
    hw_eta = np.rint(eta / MU_ETA_LSB).astype(np.int64)
    hw_phi = phi_word(np.arctan2(inputs["py"][sel], inputs["px"][sel]), MU_PHI_STEPS)
    return {"pt": (hw_pt - 1) * PT_LSB, "eta": hw_eta * MU_ETA_LSB, "phi": phi_value(hw_phi, MU_PHI_STEPS),
            "hwPt": hw_pt, "hwEta": hw_eta, "hwPhi": hw_phi,
            "hwQual": np.where(np.abs(eta) < settings.mu_qual_eta, 12, 8),
            "hwCharge": (inputs["pdg"][sel] > 0).astype(np.int64), "evt": inputs["evt"][sel]}


# --------------------------------------------------------------------------- sums


def _sum_row(hw_pt: np.ndarray, hw_phi: np.ndarray, kind: str) -> dict:
    hw_pt = np.clip(hw_pt, 0, HWPT_MAX["sum"]).astype(np.int64)
    return {"hwPt": hw_pt, "hwPhi": hw_phi.astype(np.int64), "etSumType": np.full(len(hw_pt), ETSUM_TYPES[kind])}


def _missing(ex: np.ndarray, ey: np.ndarray, kind: str) -> dict:
    """The missing-momentum sum of the components (GeV) of the visible momentum; phi word 0 when the pT word is 0."""
    hw_pt = pt_word(np.hypot(ex, ey), HWPT_MAX["sum"])
    return _sum_row(hw_pt, np.where(hw_pt > 0, phi_word(np.arctan2(-ey, -ex), CALO_PHI_STEPS), 0), kind)


def l1_sums(tw: Towers, jets: dict, n_events: int, settings: L1Settings) -> list[dict]:
    """ETT, HTT, MET, MHT and METHF per event (``etSumType`` 0, 1, 2, 3, 8), in that order.

    Towers enter with their 9-bit ET word (0.5 GeV, truncated) at their centre; ETT and MET use |eta| < ``met_eta_max``,
    METHF every tower. HTT and MHT use the L1 jets (every one, before the per-event cap) with pT > ``ht_jet_pt_min``
    and |eta| < ``ht_jet_eta_max``, at their words' pT and phi."""
    hw = np.clip(np.floor(tw.et / PT_LSB), 0, TOWER_HWPT_MAX)
    eta_c, phi_c = tw.centre()
    central = np.abs(eta_c) < settings.met_eta_max
    evt = tw.evt

    def add(values, mask):
        return np.bincount(evt[mask], weights=values[mask], minlength=n_events)

    et = hw * PT_LSB
    ex, ey = et * np.cos(phi_c), et * np.sin(phi_c)
    ht_jet = (jets["pt"] > settings.ht_jet_pt_min) & (np.abs(jets["eta"]) < settings.ht_jet_eta_max)
    jevt, jpt, jphi = jets["evt"][ht_jet], jets["pt"][ht_jet], jets["phi"][ht_jet]
    hx = np.bincount(jevt, weights=jpt * np.cos(jphi), minlength=n_events)
    hy = np.bincount(jevt, weights=jpt * np.sin(jphi), minlength=n_events)
    zero = np.zeros(n_events, np.int64)
    return [_sum_row(add(hw, central).astype(np.int64), zero, "ETT"),
            _sum_row(np.bincount(jevt, weights=jets["hwPt"][ht_jet], minlength=n_events).astype(np.int64), zero,
                     "HTT"),
            _missing(add(ex, central), add(ey, central), "MET"),
            _missing(hx, hy, "MHT"),
            _missing(add(ex, np.ones_like(central)), add(ey, np.ones_like(central)), "METHF")]


def _sum_table(rows: list[dict], n_events: int, dtypes: dict) -> tuple[dict, np.ndarray]:
    """Per event one entry of each row, events outermost."""
    stacked = {k: np.stack([r[k] for r in rows], axis=1).reshape(-1) for k in rows[0]}
    stacked["pt"] = stacked["hwPt"] * PT_LSB
    stacked["phi"] = phi_value(stacked["hwPhi"], CALO_PHI_STEPS)
    stacked["bx"] = np.zeros(len(stacked["hwPt"]), np.int64)
    return ({k: stacked[k].astype(dtype) for k, dtype in dtypes.items()},
            np.full(n_events, len(rows), dtype=np.int64))


# --------------------------------------------------------------------------- one batch


def l1_objects(inputs: dict, jet_cols: dict, njet: np.ndarray, n_events: int, settings: L1Settings, rand: L1Random,
               fields: dict) -> dict:
    """``{collection: (columns, objects per event)}`` of one batch from the clustered (mitigated at mu > 0) inputs
    and the generated jets; ``fields`` maps each collection to its branch types
    (:data:`~qtrigger.generate.output.L1_FIELDS`)."""
    jets = l1_jets(jet_cols, njet, settings, rand)
    tw = towers(inputs)
    eg = l1_eg(tw, settings, rand)
    tau = l1_taus(tw, settings, rand)
    mu = l1_muons(inputs, settings, rand)
    return {"L1Jet": _per_event(jets, jets["evt"], n_events, settings.max_jets, fields["L1Jet"]),
            "L1EG": _per_event(eg, eg["evt"], n_events, settings.max_eg, fields["L1EG"]),
            "L1Tau": _per_event(tau, tau["evt"], n_events, settings.max_tau, fields["L1Tau"]),
            "L1Mu": _per_event(mu, mu["evt"], n_events, settings.max_mu, fields["L1Mu"]),
            "L1EtSum": _sum_table(l1_sums(tw, jets, n_events, settings), n_events, fields["L1EtSum"])}
