"""Pythia 8 events -> visible particles -> anti-kT R = 0.4 jets with NanoAOD fields.

Array code over whole batches (no Python loops over particles, jets or events). The
definitions (processes, energy fractions, ghost-associated flavour, pileup) are in
docs/generation.md.
"""

from __future__ import annotations

import numpy as np

from qtrigger.errors import QTriggerError
from qtrigger.generate.tracks import MM_TO_CM, Resolution, TrackRandom, measured_ip

PROCESSES = ("ttbar", "qcd", "wjets", "minbias", "h_aa_4b", "zprime_ttbar", "vbf_h_zz_4nu")
# Signals for anomaly-detection seeds (issue 32), fixed before any result: their efficiencies are quoted, never
# trained on or tuned to. Only their shapes matter: the cross-sections Pythia reports are of these settings
# (the H2 of gg -> H -> aa -> 4b has Pythia's default BSM couplings, not the SM Higgs's production rate).
SIGNAL_SETTINGS = {
    # gg -> H -> aa -> 4b, m_a = 30 GeV: Pythia's BSM H2 (the SM Higgs's width does not know an aa channel)
    # at 125 GeV decaying to two A0 of 30 GeV, each to b bbar
    "h_aa_4b": ["Higgs:useBSM = on", "HiggsBSM:gg2H2 = on", "35:m0 = 125.0", "35:mWidth = 0.00407",
                "35:doForceWidth = on", "35:onMode = off", "35:onIfMatch = 36 36", "36:m0 = 30.0",
                "36:mWidth = 0.001", "36:mMin = 29.9", "36:mMax = 30.1", "36:onMode = off", "36:onIfMatch = 5 -5"],
    # a 1 TeV Z' (sequential couplings, no gamma*/Z interference) to t tbar
    "zprime_ttbar": ["NewGaugeBoson:ffbar2gmZZprime = on", "Zprime:gmZmode = 3", "32:m0 = 1000.0", "32:onMode = off",
                     "32:onIfAny = 6"],
    # VBF H -> ZZ -> 4 neutrinos: invisible, two forward jets
    "vbf_h_zz_4nu": ["HiggsSM:ff2Hff(t:ZZ) = on", "HiggsSM:ff2Hff(t:WW) = on", "25:m0 = 125.0", "25:onMode = off",
                     "25:onIfMatch = 23 23", "23:onMode = off", "23:onIfAny = 12 14 16"],
}
GHOST_SCALE = 1e-18
JET_R = 0.4
NEUTRINOS = (12, 14, 16)

# Constituent kinds (index into the per-jet energy table).
KIND_NAMES = ("chHEF", "neHEF", "chEmEF", "neEmEF", "muEF")
K_CHH, K_NEH, K_CHEM, K_NEEM, K_MU, K_BHAD, K_CHAD, K_PARTON = range(8)
N_KINDS = 8
# JetCand_class of each visible kind: 0 charged hadron, 1 neutral hadron, 2 photon, 3 electron, 4 muon.
CAND_CLASS = np.array([0, 1, 3, 2, 4], dtype=np.uint8)  # indexed by K_CHH, K_NEH, K_CHEM, K_NEEM, K_MU
MAX_CANDIDATES = 16  # leading constituents (by pT) stored per selected jet
TRACK_PT_MIN = 2.0  # GeV: charged constituents above it are the jet's "tracks"
DISPLACED_SIGNIFICANCE = 3.0  # lifetime-signed d0 / sigma_d0 of a displaced track
# Only tracks with |d0| < 1 mm enter the summaries: a proxy for the acceptance of prompt L1 track
# finding (fits constrained to the beam line); K0S and Lambda daughters mostly lie beyond it.
PROMPT_D0_MAX_CM = 0.1
RANKED_SIGNIFICANCES = ("maxD0Sig", "d0Sig2", "d0Sig3")  # 1st, 2nd, 3rd largest signed significance
PILEUP_SUB_BATCH = 250  # minimum-bias interactions per Pythia call (~0.6 s): signals are handled between calls
PILEUP_PER_BATCH = 5000  # mean pileup interactions per batch of hard events: bounds memory and the time between writes


# --------------------------------------------------------------------------- imports


def import_generators():
    """(pythia8mc, fastjet) or a QTriggerError telling how to install them."""
    try:
        import fastjet
        import pythia8mc
    except ImportError as exc:
        raise QTriggerError(
            f"the generator needs pythia8mc and fastjet ({exc.name} is not installed): "
            "pip install '.[generate]'"
        ) from None
    try:  # FastJet prints its banner to stdout on first use; keep stdout for the summary
        fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    except AttributeError:
        pass
    return pythia8mc, fastjet




# --------------------------------------------------------------------------- Pythia setup


def process_settings(process: str, pthat_min: float = 30.0, bias_pow: float | None = None,
                     pthat_max: float | None = None) -> list[str]:
    """Pythia ``readString`` settings for one process (without seed and print settings)."""
    common = ["Beams:idA = 2212", "Beams:idB = 2212", "Beams:eCM = 13000."]
    if process == "ttbar":
        proc = ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"]
    elif process == "qcd":
        proc = ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {pthat_min}"]
    elif process == "wjets":
        proc = [
            "WeakBosonAndParton:qqbar2Wg = on",
            "WeakBosonAndParton:qg2Wq = on",
            f"PhaseSpace:pTHatMin = {pthat_min}",
        ]
    elif process == "minbias":
        proc = ["SoftQCD:nonDiffractive = on"]  # one interaction per event (mu = 0); crossings: pileup_settings
    elif process == "inelastic":
        proc = ["SoftQCD:inelastic = on"]
    elif process in SIGNAL_SETTINGS:
        proc = list(SIGNAL_SETTINGS[process])
    else:
        raise QTriggerError(f"unknown process {process!r}; expected one of {', '.join(PROCESSES)}")
    if pthat_max is not None and process in ("qcd", "wjets"):
        proc.append(f"PhaseSpace:pTHatMax = {pthat_max}")
    if bias_pow is not None:
        proc += [
            "PhaseSpace:bias2Selection = on",
            f"PhaseSpace:bias2SelectionPow = {bias_pow}",
            f"PhaseSpace:bias2SelectionRef = {pthat_min}",
        ]
    return common + proc


def pileup_settings() -> list[str]:
    """Settings of pileup interactions: every inelastic interaction (non-diffractive and diffractive), as the
    LHC counts mu (docs/generation.md)."""
    return process_settings("inelastic")


def sigma_inel_mb(pythia) -> float:
    """Pythia's inelastic pp cross-section (total - elastic, mb) at the beams' energy: the sigma that defines mu."""
    ecm = pythia.infoPython().eCM()
    return float(pythia.getSigmaTotal(2212, 2212, ecm) - pythia.getSigmaPartial(2212, 2212, ecm, 2))


def applied_pthat_min(process: str, pthat_min: float) -> float:
    return float(pthat_min) if process in ("qcd", "wjets") else 0.0


def make_pythia(pythia8mc, settings: list[str], seed: int):
    """An initialised, quiet Pythia instance."""
    pythia = pythia8mc.Pythia("", False)
    quiet = ["Print:quiet = on", "Next:numberCount = 0", "Next:numberShowEvent = 0"]
    for line in [*settings, *quiet, "Random:setSeed = on", f"Random:seed = {seed}"]:
        if not pythia.readString(line):
            raise QTriggerError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise QTriggerError(f"Pythia initialisation failed for settings {settings}")
    return pythia


def next_batch(pythia, n: int):
    """Exactly ``n`` events (failed events are retried, at most 10 n tries)."""
    try:
        return pythia.nextBatch(int(n), 10.0)
    except RuntimeError as exc:
        raise QTriggerError(f"Pythia failed to generate {n} events: {exc}") from None


# --------------------------------------------------------------------------- particle arrays


def _flat_particles(batch, fields=("id", "status", "mother1", "daughter1", "daughter2"), vertex=False) -> dict:
    """Flat numpy columns of all particles of a batch, plus ``counts`` and ``start``; with
    ``vertex`` also Pythia's production vertex ``vx, vy, vz`` in cm (0 where Pythia has none)."""
    import awkward as ak

    prt = batch["prt"]
    out = {"counts": ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)}
    for name in fields:
        out[name] = ak.to_numpy(ak.flatten(prt[name], axis=1))
    for name, src in (("px", "px"), ("py", "py"), ("pz", "pz"), ("E", "e")):
        out[name] = ak.to_numpy(ak.flatten(prt["p"][src], axis=1)).astype(np.float64)
    if vertex:  # vProd is an option record (None = at the origin), in mm
        for name, src in (("vx", "px"), ("vy", "py"), ("vz", "pz")):
            flat = ak.fill_none(ak.flatten(prt["vProd"][src], axis=1), 0.0)
            out[name] = ak.to_numpy(flat).astype(np.float64) * MM_TO_CM
    out["start"] = np.concatenate([[0], np.cumsum(out["counts"])[:-1]]).astype(np.int64)
    out["evt"] = np.repeat(np.arange(len(out["counts"]), dtype=np.int64), out["counts"])
    return out


def _quark_digits(aid: np.ndarray):
    return (aid // 1000) % 10, (aid // 100) % 10, (aid // 10) % 10


def heavy_flavour(pdg_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is b hadron, is c hadron) from PDG ids: quark digits nq1/nq2/nq3; c excludes b."""
    aid = np.abs(pdg_id)
    nq1, nq2, nq3 = _quark_digits(aid)
    hadron = (aid > 100) & (nq3 > 0)
    has_b = hadron & ((nq1 == 5) | (nq2 == 5) | (nq3 == 5))
    has_c = hadron & ((nq1 == 4) | (nq2 == 4) | (nq3 == 4)) & ~has_b
    return has_b, has_c


def _is_parton(pdg_id: np.ndarray) -> np.ndarray:
    aid = np.abs(pdg_id)
    return ((aid >= 1) & (aid <= 5)) | (aid == 21)


def _last_of(flag: np.ndarray, p: dict) -> np.ndarray:
    """``flag`` particles none of whose daughters is flagged (via daughters' mother1)."""
    daughters = np.flatnonzero(flag & (p["mother1"] > 0))
    mothers = p["start"][p["evt"][daughters]] + p["mother1"][daughters]
    is_mother = np.zeros(len(flag), dtype=bool)
    is_mother[mothers] = True
    return flag & ~is_mother


def _ghost_partons(p: dict) -> np.ndarray:
    """Quarks/gluons with negative status whose daughters (d1 and d2) are not partons."""
    parton = _is_parton(p["id"]) & (p["status"] < 0) & (p["daughter1"] > 0)
    base = p["start"][p["evt"]]
    n = len(parton)
    d1 = np.clip(base + p["daughter1"], 0, n - 1)
    d2 = np.clip(base + p["daughter2"], 0, n - 1)
    d2_parton = (p["daughter2"] > 0) & _is_parton(p["id"][d2])
    return parton & ~_is_parton(p["id"][d1]) & ~d2_parton


class ChargeTable:
    """PDG id -> electric charge, looked up once per species in Pythia's ParticleData."""

    def __init__(self, particle_data):
        self._pd = particle_data
        self._cache: dict[int, float] = {}

    def __call__(self, pdg_id: np.ndarray) -> np.ndarray:
        uniq, inverse = np.unique(pdg_id, return_inverse=True)
        for code in uniq.tolist():  # a few dozen species, not particles
            if code not in self._cache:
                self._cache[code] = float(self._pd.charge(int(code)))
        return np.array([self._cache[c] for c in uniq.tolist()], dtype=np.float64)[inverse]


def _visible_kind(pdg_id: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """Constituent kind (K_CHH ... K_MU) of visible final-state particles."""
    aid = np.abs(pdg_id)
    kind = np.where(charge != 0, K_CHH, K_NEH)
    kind = np.where(aid == 11, K_CHEM, kind)
    kind = np.where(aid == 22, K_NEEM, kind)
    kind = np.where(aid == 13, K_MU, kind)
    return kind.astype(np.int8)


def _visible(p: dict) -> np.ndarray:
    return (p["status"] > 0) & ~np.isin(np.abs(p["id"]), NEUTRINOS)


def _select(p: dict, mask: np.ndarray, evt: np.ndarray, kind, scale: float = 1.0, ip: dict | None = None) -> dict:
    idx = np.flatnonzero(mask)
    out = {k: p[k][idx] * scale for k in ("px", "py", "pz", "E")}
    out["E_true"] = p["E"][idx]
    out["pt_true"] = np.hypot(p["px"][idx], p["py"][idx])
    out["pdg"] = p["id"][idx].astype(np.int32)
    out["evt"] = evt[idx]
    out["kind"] = kind if np.ndim(kind) else np.full(len(idx), kind, dtype=np.int8)
    if ip is None:  # ghosts (and particles without tracks): neutral, no impact parameter
        ip = {"charge": np.zeros(len(idx), np.int8), "d0": np.zeros(len(idx)), "z0": np.zeros(len(idx)),
              "sigma_d0": np.ones(len(idx))}
    out.update(ip)
    return out


def _track_ip(p: dict, idx: np.ndarray, charge: np.ndarray, origin: np.ndarray, tracks: TrackRandom | None,
              stream: str, resolution: Resolution) -> dict:
    """Charge and measured (d0, z0, sigma_d0) of particles ``idx``, produced at ``origin`` (cm) +
    Pythia's vertex; without ``tracks`` (no random streams) d0 = z0 = 0."""
    charged = charge != 0
    out = {"charge": np.rint(charge).astype(np.int8)}
    if tracks is None:
        return {**out, "d0": np.zeros(len(idx)), "z0": np.zeros(len(idx)), "sigma_d0": np.ones(len(idx))}
    pos = origin + np.column_stack([p["vx"][idx], p["vy"][idx], p["vz"][idx]])
    noise = tracks.noise(int(charged.sum()), stream)
    d0, z0, sigma = measured_ip(pos, p["px"][idx], p["py"][idx], p["pz"][idx], charged, resolution, noise)
    return {**out, "d0": d0, "z0": z0, "sigma_d0": sigma}


def hard_inputs(batch, charges: ChargeTable, tracks: TrackRandom | None = None, resolution: Resolution | None = None,
                pv: np.ndarray | None = None) -> list[dict]:
    """Clustering inputs of the hard events: visible particles and flavour ghosts.

    ``pv`` (events x 3, cm): each event's primary vertex, added to Pythia's production
    vertices; ``tracks`` smears the charged particles' impact parameters (``resolution``).
    """
    p = _flat_particles(batch, vertex=True)
    vis = _visible(p)
    idx = np.flatnonzero(vis)
    charge = charges(p["id"][idx])
    origin = np.zeros((len(idx), 3)) if pv is None else pv[p["evt"][idx]]
    ip = _track_ip(p, idx, charge, origin, tracks, "hard_smear", resolution or Resolution())
    is_b, is_c = heavy_flavour(p["id"])
    pieces = [_select(p, vis, p["evt"], _visible_kind(p["id"][idx], charge), ip=ip)]
    pieces.append(_select(p, _last_of(is_b, p), p["evt"], K_BHAD, GHOST_SCALE))
    pieces.append(_select(p, _last_of(is_c, p), p["evt"], K_CHAD, GHOST_SCALE))
    pieces.append(_select(p, _ghost_partons(p), p["evt"], K_PARTON, GHOST_SCALE))
    return pieces


def pileup_inputs(pu_pythia, rng, mu: float, n_events: int, charges: ChargeTable,
                  tracks: TrackRandom | None = None, resolution: Resolution | None = None) -> list[dict]:
    """Visible particles of Poisson(mu) minimum-bias interactions per hard event, each
    interaction at its own beam-spot vertex (drawn from ``tracks``)."""
    n_pu = rng.poisson(mu, size=n_events)
    total = int(n_pu.sum())
    if total == 0:
        return []
    p = pileup_particles(pu_pythia, total)
    owner = np.repeat(np.arange(n_events, dtype=np.int64), n_pu)
    vis = _visible(p)
    idx = np.flatnonzero(vis)
    charge = charges(p["id"][idx])
    origin = np.zeros((len(idx), 3)) if tracks is None else tracks.vertices(total, "pu_vertex")[p["evt"][idx]]
    ip = _track_ip(p, idx, charge, origin, tracks, "pu_smear", resolution or Resolution())
    return [_select(p, vis, owner[p["evt"]], _visible_kind(p["id"][idx], charge), ip=ip)]


def pileup_particles(pu_pythia, total: int, sub_batch: int | None = None) -> dict:
    """Flat particles of ``total`` minimum-bias interactions, generated ``sub_batch`` at a time.

    Pythia's stream is sequential, so the particles equal one call for all of them; between
    the calls (a fraction of a second each) Python handles SIGINT/SIGTERM, which it cannot do
    inside one long Pythia call.
    """
    step = sub_batch or PILEUP_SUB_BATCH
    parts = [_with_pthat(next_batch(pu_pythia, min(step, total - start))) for start in range(0, total, step)]
    return concat_particles(parts)


def _with_pthat(batch) -> dict:
    """Flat particles of a batch of interactions (:func:`_flat_particles`, vertices) plus each one's ``pthat``."""
    import awkward as ak

    out = _flat_particles(batch, fields=("id", "status"), vertex=True)
    out["pthat"] = np.sqrt(ak.to_numpy(batch["info"]["pT2Hat"]).astype(np.float64))
    return out


def concat_particles(parts: list[dict]) -> dict:
    """One flat particle dict from consecutive ones (:func:`_flat_particles`), events renumbered."""
    if len(parts) == 1:
        return parts[0]
    out = {k: np.concatenate([part[k] for part in parts]) for k in parts[0] if k not in ("start", "evt")}
    out["start"] = np.concatenate([[0], np.cumsum(out["counts"])[:-1]]).astype(np.int64)
    out["evt"] = np.repeat(np.arange(len(out["counts"]), dtype=np.int64), out["counts"])
    return out


def pileup_batch_size(batch_size: int, mu: float) -> int:
    """Hard events per batch with pileup: at most :data:`PILEUP_PER_BATCH` interactions on average (memory,
    time between writes), at least one event. The sample does not depend on it (sequential streams)."""
    if mu <= 0:
        return int(batch_size)
    return max(1, min(int(batch_size), int(PILEUP_PER_BATCH // mu)))
