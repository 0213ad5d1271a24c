"""One chunk of a sample: hard events (or zero-bias crossings), their pileup overlay, jets, one part file.

A chunk with ``pileup = mu > 0`` overlays Poisson(mu) inelastic interactions per event
(:mod:`qtrigger.generate.pileup`), from a second Pythia or from a library. A zero-bias crossing
(``process = minbias`` with mu > 0) *is* Poisson(mu) interactions: no hard interaction is added, an empty
crossing stays empty, ``Generator_binvar`` is its hardest interaction's pTHat and ``PV_z`` that
interaction's vertex (0 when empty).
"""

from __future__ import annotations

import time

import numpy as np

from qtrigger.generate.events import (
    ChargeTable,
    hard_inputs,
    import_generators,
    make_pythia,
    next_batch,
    pileup_batch_size,
    pileup_settings,
    sigma_inel_mb,
)
from qtrigger.generate.jets import jet_table, merge_inputs, raw_jet_summaries, to_awkward
from qtrigger.generate.l1objects import L1Random, L1Settings, l1_objects
from qtrigger.generate.library import draw_positions, load_library
from qtrigger.generate.mitigation import JET_SEED_GEV, MITIGATION_CODES, mitigate
from qtrigger.generate.options import PILEUP_SEED_OFFSET
from qtrigger.generate.output import CAND_FIELDS, L1_FIELDS, open_output, write_runs
from qtrigger.generate.pileup import direct_overlay, empty_piece, library_overlay, pileup_counts
from qtrigger.generate.tracks import Resolution, TrackRandom


def is_zero_bias(spec: dict) -> bool:
    """Zero-bias crossings: minimum bias with pileup (Poisson(mu) interactions, no extra hard one)."""
    return spec["process"] == "minbias" and spec["pileup"] > 0


def _overlay_source(spec: dict, pythia8mc):
    """(overlay(counts, tracks, resolution) -> Overlay, sigma_inel in mb, the pileup Pythia or None);
    (None, None, None) at mu = 0."""
    if spec["pileup"] <= 0:
        return None, None, None
    if spec.get("library"):
        lib = load_library(spec["library"])
        total = int(pileup_counts(spec["pythia_seed"], spec["pileup"], spec["n_events"]).sum())
        draws = draw_positions(len(lib["counts"]), spec["base_seed"], spec["process_tag"], spec["draw_offset"], total)
        used = [0]

        def from_library(counts, tracks, resolution):
            k = int(counts.sum())
            mine, used[0] = draws[used[0]:used[0] + k], used[0] + k
            return library_overlay(lib, mine, counts, tracks, resolution)

        return from_library, spec["sigma_inel_mb"], None
    pu_pythia = make_pythia(pythia8mc, pileup_settings(), spec["pythia_seed"] + PILEUP_SEED_OFFSET)
    charges = ChargeTable(pu_pythia.particleData)
    return ((lambda counts, tracks, resolution: direct_overlay(pu_pythia, counts, charges, tracks, resolution)),
            sigma_inel_mb(pu_pythia), pu_pythia)


def _hard_batch(pythia, charges, n: int, tracks, resolution) -> dict:
    """``n`` hard events: weights, pTHat, primary-vertex z and clustering pieces."""
    import awkward as ak

    batch = next_batch(pythia, n)
    pv = tracks.vertices(n, "pv")
    return {"weight": ak.to_numpy(batch["info"]["weights"][:, 0]).astype(np.float64),
            "pthat": np.sqrt(ak.to_numpy(batch["info"]["pT2Hat"]).astype(np.float64)),
            "pv_z": pv[:, 2], "pieces": hard_inputs(batch, charges, tracks, resolution, pv)}


def _batch(spec, pythia, charges, overlay, n_pu, n, tracks, resolution) -> tuple[dict, object]:
    """One batch of events (hard + overlay, or zero-bias crossings) and its overlay (None at mu = 0)."""
    if is_zero_bias(spec):
        extra = overlay(n_pu, tracks, resolution)
        return {"weight": np.ones(n), "pthat": extra.max_pthat, "pv_z": extra.hardest_z,
                "pieces": extra.pieces or [empty_piece()]}, extra
    out = _hard_batch(pythia, charges, n, tracks, resolution)
    if overlay is None:
        return out, None
    extra = overlay(n_pu, tracks, resolution)
    out["pieces"] += extra.pieces
    return out, extra


def _generate_part(spec: dict) -> dict:
    """Generate ``spec['n_events']`` events into ``spec['path']`` (runs in a Dask worker).

    Returns the counts, the ``Runs`` entry written and the seconds taken. ``spec['bar']``
    (in-process runs only) is a progress bar updated per batch.
    """
    pythia8mc, fastjet = import_generators()
    t0, cpu0 = time.perf_counter(), time.process_time()
    pythia = None if is_zero_bias(spec) else make_pythia(pythia8mc, spec["settings"], spec["pythia_seed"])
    tracks = TrackRandom(spec["pythia_seed"])  # vertices and smearing: never Pythia's random stream
    resolution = Resolution(spec.get("d0_resolution_um"), spec.get("z0_resolution_um"))
    overlay, sigma_inel, pu_pythia = _overlay_source(spec, pythia8mc)
    charges = ChargeTable(pythia.particleData) if pythia is not None else None
    n_pu = pileup_counts(spec["pythia_seed"], spec["pileup"], spec["n_events"]) if overlay else None
    counts = {"events": 0, "jets": 0, "sumw": 0.0, "sumw2": 0.0, "flavour": {0: 0, 4: 0, 5: 0}}
    l1 = L1Settings(**spec["l1_objects"]) if spec.get("l1_objects") is not None else None
    l1_random = L1Random(spec["pythia_seed"]) if l1 is not None else None  # own streams: not Pythia's nor the tracks'
    file, events_tree, runs_tree = open_output(spec["path"], spec["compression"], spec.get("candidates", True),
                                               pileup=overlay is not None, l1=l1 is not None)
    with file:
        done, batch_size = 0, pileup_batch_size(spec["batch_size"], spec["pileup"])
        while done < spec["n_events"]:
            n = min(batch_size, spec["n_events"] - done)
            out, extra = _batch(spec, pythia, charges, overlay, None if n_pu is None else n_pu[done:done + n], n,
                                tracks, resolution)
            cols, njet, (cands, ncand), pileup, clustered = _jets(fastjet, spec, out["pieces"], n, resolution, extra)
            first = spec["event_start"] + done
            events_tree.extend({
                "event": np.arange(first, first + n, dtype=np.uint64),
                "genWeight": out["weight"].astype(np.float32),
                "Generator_binvar": out["pthat"].astype(np.float32),
                "PV_z": out["pv_z"].astype(np.float32),
                **pileup,
                "Jet": to_awkward(cols, njet),
                **({"JetCand": to_awkward(cands, ncand, CAND_FIELDS)} if spec.get("candidates", True) else {}),
                **(_l1_branches(clustered, cols, njet, n, l1, l1_random) if l1 is not None else {}),
            })
            _count(counts, n, out["weight"], cols)
            done += n
            if spec.get("bar") is not None:
                spec["bar"].update(n)
        if pythia is not None:
            info = pythia.infoPython()  # a fresh object: older handles show stale sigmaGen
            xsec, xsec_err = info.sigmaGen(), info.sigmaErr()
            sigma_inel = sigma_inel if sigma_inel is not None else sigma_inel_mb(pythia)
        else:  # zero-bias crossings: one per bunch crossing with collisions; sigma_inel is what they sample
            xsec, xsec_err = sigma_inel, 0.0
        runs = _runs_entry(spec, counts, xsec, xsec_err, sigma_inel) | (l1.runs_values() if l1 is not None else {})
        write_runs(runs_tree, runs)
    counts["runs"] = runs
    counts["seconds"] = time.perf_counter() - t0
    counts["cpu_seconds"] = time.process_time() - cpu0
    return counts


def _l1_branches(inputs: dict, cols: dict, njet: np.ndarray, n: int, settings: L1Settings, rand: L1Random) -> dict:
    """The L1 collections of one batch as record arrays (:mod:`qtrigger.generate.l1objects`)."""
    built = l1_objects(inputs, cols, njet, n, settings, rand, L1_FIELDS)
    return {name: to_awkward(columns, per_event, L1_FIELDS[name]) for name, (columns, per_event) in built.items()}


def _jets(fastjet, spec: dict, pieces: list[dict], n: int, resolution: Resolution, extra) -> tuple:
    """(jet columns, jets per event, candidates, per-event pileup branches, the clustered inputs) of one batch: at
    mu > 0 the jets are clustered from the mitigated inputs (``spec['mitigation']``) and the raw jets summarised
    beside them."""
    inputs = merge_inputs(pieces, n)
    if extra is None:
        return (*jet_table(fastjet, inputs, n, spec["jet_pt_min"], spec["jet_eta_max"]), {}, inputs)
    mitigated = mitigate(inputs, n, spec["mitigation"], resolution)
    cols, njet, cands = jet_table(fastjet, mitigated.inputs, n, spec["jet_pt_min"], spec["jet_eta_max"],
                                  mitigated.pt_offset, jet_seed_gev(spec))
    branches = {**extra.branches(), "Pileup_rho": mitigated.rho.astype(np.float32),
                "L1PV_z": mitigated.l1_vertex_z.astype(np.float32),
                **raw_jet_summaries(fastjet, mitigated.raw_inputs, n, spec["jet_pt_min"], spec["jet_eta_max"])}
    return cols, njet, cands, branches, mitigated.inputs


def _count(counts: dict, n: int, weight: np.ndarray, cols: dict) -> None:
    counts["events"] += n
    counts["jets"] += len(cols["pt"])
    counts["sumw"] += float(weight.sum())
    counts["sumw2"] += float((weight**2).sum())
    for flav in (0, 4, 5):
        counts["flavour"][flav] += int((cols["hadronFlavour"] == flav).sum())


def _runs_entry(spec: dict, counts: dict, xsec: float, xsec_err: float, sigma_inel: float) -> dict:
    return {
        "genEventCount": counts["events"],
        "genEventSumw": counts["sumw"],
        "genEventSumw2": counts["sumw2"],
        "genXsec_mb": xsec,
        "genXsecErr_mb": xsec_err,
        "isMinBias": int(spec["process"] == "minbias"),
        "pthatMin": spec["pthat_min"],
        "pthatMax": spec["pthat_max"],
        "genFilterEff": 1.0,
        "seed": spec["base_seed"],
        **Resolution(spec.get("d0_resolution_um"), spec.get("z0_resolution_um")).runs_values(),
        "pileupMu": float(spec["pileup"]),
        "sigmaInel_mb": float(sigma_inel),
        "pileupLibraryHash": int(spec.get("library_hash", 0)),
        "pileupReuse": float(spec.get("reuse_mean", 0.0)),
        "pileupMaxReuse": int(spec.get("reuse_max", 0)),
        "pileupMitigation": MITIGATION_CODES[spec.get("mitigation", "none")] if spec["pileup"] > 0 else 0,
        "jetSeedGeV": jet_seed_gev(spec) if spec["pileup"] > 0 else 0.0,
    }


def jet_seed_gev(spec: dict) -> float:
    """The mitigated jets' seed threshold (GeV): ``spec['jet_seed_gev']`` if given, else the scheme's default."""
    given = spec.get("jet_seed_gev")
    return float(JET_SEED_GEV[spec.get("mitigation", "none")] if given is None else given)
