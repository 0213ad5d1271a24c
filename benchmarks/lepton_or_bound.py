"""How much the GT's leptons and MET can add to the jet-only event network when kept as separate seeds.

Usage (one finished jet-only run per training seed; the object config only names the L1 words to read):

    python benchmarks/lepton_or_bound.py runs/jets_s1 [runs/jets_s2 ...] \
        [--objects configs/l1_ttbar_event_jets_objects_pu60.yaml] [--target-khz 10]

Per run, the OR menu "jet-only network seed (preselection and score >= t) OR L1 muon pT >= a OR L1 e/gamma pT >= b
(any, loose-isolated hwIso bit 0, or tight hwIso == 3) OR L1 MET >= c" at a total rate of ``--target-khz``:

- the words are the pipeline's: the jet network's exact score codes on its own inputs (``event_input_spec`` of the
  run's config and its preprocessing), the L1 words as ``--objects``'s input builder reads them (leading muon pT,
  the e/gamma slots' pT and hwIso, the MET pT; codes of 0.5 GeV);
- every threshold is set on the calibration half of the rate sample (the run's ``trigger.rate_files``, halves,
  weights and normalisation: ``split_events``, ``sample_rate``; ``t`` by ``lowest_code_at_rate`` on the OR's keys,
  as the pipeline tunes its seeds); a, b, c each take the codes at which the object seed alone runs at
  0.25-6 kHz on the calibration half, or are off;
- among these menus the one with the best efficiency on the ttbar *validation* events is chosen (``chosen``): the
  signal never seen by the quote, as the pipeline chooses its network seed; ``best_on_test`` is the best one on
  the quoted events themselves (an optimistic bound, no held-out choice);
- quoted: held-out rate (error, n_eff_fired) and efficiency on every ttbar test event (preselection losses
  counted, the events ``paired_event_seeds.py`` uses), and the paired gain menu - network alone at its own quoted
  seed (``paired_gain``). ``t`` with every object seed off reproduces the run's own threshold (``check``).
  ``rate_matched_diagnostic``: the same gain against the network alone at the menu's held-out rate (its threshold
  set on the held-out half itself: a diagnostic of how much of the gain is rate, not a quote).

Also per run: of the test events the network alone loses at the target, the fraction with an L1 muon >= a, an
e/gamma (the chosen isolation) >= b, MET >= c at the chosen thresholds, and at each seed's 1 kHz-alone threshold
(there also: the network's efficiency on the test events above it and how many carry a lepton-like jet), and how
many lost events any of them would recover at no rate cost (``lost_with_any_object_at_1khz_alone``: a ceiling).
JSON on stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np

from qtrigger.config import load_config, resolve_sample_files
from qtrigger.data.crossing import rate_sample_info
from qtrigger.data.reader import split_by_event
from qtrigger.emulate.score import score_head_name, scored
from qtrigger.emulate.sets import extract_any_network
from qtrigger.inputs.event import check_input_words
from qtrigger.inputs.object_event import event_input_spec
from qtrigger.inputs.seed_jets import NO_CODE
from qtrigger.levels.event import event_labels, score_codes_of
from qtrigger.runs.finished import FinishedRun
from qtrigger.trigger.efficiency import efficiency_of, paired_gain
from qtrigger.trigger.menu import check_rate_files, khz_key
from qtrigger.trigger.preselection import preselect
from qtrigger.trigger.rates import split_events
from qtrigger.trigger.seeds import lowest_code_at_rate
from qtrigger.trigger.table_rates import sample_rate

SHARES_KHZ = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
EG_ISO = {"any": 0, "loose": 1, "tight": 3}  # hwIso must hold these bits
FIRES = np.iinfo(np.int64).max // 4  # the key of an event an object seed already keeps
PT_LSB_GEV = 0.5


def object_keys(codes: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Per event, the L1 words the menu cuts on: leading muon pT, leading e/gamma pT per isolation, MET pT."""
    col = {n: codes[:, k] for k, n in enumerate(names)}
    slots = sorted(int(n[4:-3]) for n in names if n.startswith("L1EG") and n.endswith("_pt"))
    keys = {"muon": col["L1Mu0_pt"].astype(np.int64), "MET": col["MET_pt"].astype(np.int64)}
    for label, bits in EG_ISO.items():
        pt = np.stack([np.where((col[f"L1EG{k}_hwIso"] & bits) == bits, col[f"L1EG{k}_pt"], 0) for k in slots], 1)
        keys[f"e/gamma {label}"] = pt.max(axis=1).astype(np.int64)
    return keys


def read_events(config, objects_config, files: dict):
    """(table, jet network's seed keys, object keys, preselected) of ``files`` read as the pipeline reads them."""
    spec, ospec = event_input_spec(config), event_input_spec(objects_config)
    table, otable = spec.read(config, files), ospec.read(objects_config, files)
    if table.n_events != otable.n_events or not (np.array_equal(table.event_entry, otable.event_entry)
                                                 and np.array_equal(table.event_file, otable.event_file)):
        raise SystemExit("the jet and object inputs do not read the same events")
    built, obuilt = spec.build(table), ospec.build(otable)
    check_input_words(built, "events")
    return table, built, object_keys(obuilt.codes, list(ospec.names)), spec


def seed_keys(score: np.ndarray, preselected: np.ndarray) -> np.ndarray:
    """The network seed's key: its score code where the event passes the preselection, else NO_CODE."""
    return np.where(preselected, score, NO_CODE)


def objects_fire(obj_keys, cuts: dict, n: int) -> np.ndarray:
    """Per event: any object seed of the menu fires."""
    out = np.zeros(n, bool)
    for seed, code in cuts.items():
        out |= obj_keys[seed] >= code
    return out


def tune(net_keys, obj_keys, cuts: dict, calibration, target_hz: float):
    """(t, calibration rate) of the OR menu: the lowest network code whose OR with the object cuts is <= target;
    None when the object seeds alone are above it."""
    others = objects_fire(obj_keys, cuts, len(net_keys))
    if calibration.of(others).rate_hz > target_hz:
        return None
    codes, rates, _ = lowest_code_at_rate(np.where(others, FIRES, net_keys), calibration, [target_hz])
    return int(codes[0]), float(rates[0])


def menu_fires(net_keys, obj_keys, cuts: dict, t: int) -> np.ndarray:
    """Per event: the network seed or any object seed of the menu fires."""
    return (net_keys >= t) | objects_fire(obj_keys, cuts, len(net_keys))


def candidates(obj_rate, calibration) -> dict[str, list]:
    """Per object seed: its codes at the calibration-rate shares of :data:`SHARES_KHZ` (None: the seed off)."""
    out = {}
    for seed, keys in obj_rate.items():
        codes, _, _ = lowest_code_at_rate(np.where(keys > 0, keys, NO_CODE), calibration,
                                          [s * 1e3 for s in SHARES_KHZ])
        out[seed] = [None, *sorted(set(int(c) for c in codes))]
    return out


def _with_object(keys, code, lost, test, alone, lepton_like) -> dict:
    """Test events with the object >= ``code``: the fraction of the network's losses they are, how many there are,
    the network alone's efficiency on them, and the fraction with a lepton-like jet (chEmEF or muEF > 0.5)."""
    if code is None:
        return {"threshold_gev": None}
    above = test & (keys >= code)
    return {"threshold_gev": code * PT_LSB_GEV, "fraction_of_lost": float((keys[lost] >= code).mean()),
            "test_events_above": int(above.sum()),
            "network_efficiency_on_them": float(alone[above].mean()) if above.any() else None,
            "lepton_like_jet_fraction": float(lepton_like[above].mean()) if above.any() else None}


def _union_lost(obj_sig: dict, cuts: dict, lost, test) -> dict:
    """The network's lost test events with a muon, any e/gamma or MET above its 1 kHz-alone threshold: their count
    and what recovering all of them at no rate cost would add (points of all test events: a ceiling)."""
    above = np.zeros(len(lost), bool)
    for seed in ("muon", "e/gamma any", "MET"):
        if cuts.get(seed) is not None:
            above |= obj_sig[seed] >= cuts[seed]
    return {"events": int((lost & above).sum()), "of_lost": float(above[lost].mean()),
            "free_ceiling_gain": float((lost & above).sum() / test.sum())}


def study(run_dir: str, objects_path: str, target_hz: float) -> dict:
    """The OR-menu bound of one jet-only run (module docstring)."""
    run = FinishedRun.load(run_dir)
    config, t = run.config, run.config.trigger
    objects_config = load_config(objects_path, check_files=False).model_copy(update={"data": config.data})
    network = scored(extract_any_network(run.load_model("qat")), score_head_name(config))
    score_fn = score_codes_of(network)
    # signal: every event of the run's samples, split as the run split them
    table, built, obj_sig, spec = read_events(config, objects_config, resolve_sample_files(config))
    words = spec.words
    pre = preselect(config, built, words)
    net_sig = seed_keys(score_fn(run.preprocessor.transform(built.codes)), pre)
    part = split_by_event(table, config.data.split.train, config.data.split.val, config.data.split.seed).event_part
    rows = run.test_jets()
    signal = event_labels(config, table) == 1
    test, val = signal & (part == 2), signal & (part == 1)
    if not np.array_equal(np.flatnonzero(part == 2), rows["event"]):
        raise SystemExit(f"{run_dir}: the test events differ from the run's test_jets.npz")
    # rate sample: the run's files, halves and weights
    files = check_rate_files(config)
    rtable, rbuilt, obj_rate, _ = read_events(config, objects_config, {"rate": files})
    net_rate = seed_keys(score_fn(run.preprocessor.transform(rbuilt.codes)), preselect(config, rbuilt, words))
    everything = np.ones(rtable.n_events, bool)
    info = rate_sample_info(sorted({rtable.files[f] for f in np.unique(rtable.event_file)}), t.normalisation)
    cal_events, held_events = split_events(everything, t.rate_split_seed)
    kw = dict(tree=config.data.tree, lumi_cm2s=t.lumi_cm2s, n_bunches=t.n_bunches, min_n_eff=t.min_n_eff)
    calibration = sample_rate(info, t.normalisation, cal_events, rtable, **kw)
    held_out = sample_rate(info, t.normalisation, held_events, rtable, **kw)

    quoted = run.result.trigger["at_rate"][khz_key(target_hz)]
    own = int(quoted["seed"]["score_code"])
    alone_t, _ = tune(net_rate, obj_rate, {}, calibration, target_hz)
    alone_sig = net_sig >= own
    grid = candidates(obj_rate, calibration)
    menus = []
    for mu, met, (eg_label, eg) in itertools.product(
            grid["muon"], grid["MET"],
            [("e/gamma off", None)] + [(f"e/gamma {k}", c) for k in EG_ISO for c in grid[f"e/gamma {k}"][1:]]):
        cuts = {k: v for k, v in (("muon", mu), ("MET", met), (eg_label, eg)) if v is not None}
        tuned = tune(net_rate, obj_rate, cuts, calibration, target_hz)
        if tuned is None:
            continue
        fires = menu_fires(net_sig, obj_sig, cuts, tuned[0])
        menus.append((float(fires[val].mean()), float(fires[test].mean()), cuts, tuned))

    def describe(entry):
        _, _, cuts, (code, cal_rate) = entry
        fires = menu_fires(net_sig, obj_sig, cuts, code)
        point = held_out.of(menu_fires(net_rate, obj_rate, cuts, code))
        gain = paired_gain(fires[test], alone_sig[test])
        lost = test & ~alone_sig
        matched, matched_rate, _ = lowest_code_at_rate(net_rate, held_out, [point.rate_hz])
        matched_gain = paired_gain(fires[test], (net_sig >= matched[0])[test])
        return {"thresholds_gev": {k: v * PT_LSB_GEV for k, v in cuts.items()}, "network_code": code,
                "calibration_rate_hz": cal_rate, "held_out_rate_hz": point.rate_hz,
                "held_out_rate_hz_err": point.rate_err_hz, "held_out_n_eff_fired": point.n_eff_fired,
                "efficiency": efficiency_of(fires[test]).value, "efficiency_err": efficiency_of(fires[test]).err,
                "validation_efficiency": float(fires[val].mean()),
                "gain_over_network": gain.value, "gain_err": gain.err, "gained": gain.gained, "lost": gain.lost,
                "rate_matched_diagnostic": {
                    "network_code": int(matched[0]), "network_held_out_rate_hz": float(matched_rate[0]),
                    "network_efficiency": float((net_sig >= matched[0])[test].mean()),
                    "gain": matched_gain.value, "gain_err": matched_gain.err},
                "lost_by_network_with_object_above_cut": {
                    k: float((obj_sig[k][lost] >= v).mean()) for k, v in cuts.items()}}

    chosen = max(menus, key=lambda m: (m[0], -m[3][1]))
    best_test = max(menus, key=lambda m: (m[1], -m[3][1]))
    lost = test & ~alone_sig
    at_1khz = {k: g[SHARES_KHZ.index(1.0) + 1] if len(g) > SHARES_KHZ.index(1.0) + 1 else None
               for k, g in grid.items()}
    alone_point = held_out.point(net_rate, own)
    return {
        "run": run_dir, "target_khz": target_hz / 1e3, "test_events": int(test.sum()),
        "validation_events": int(val.sum()), "menus_tried": len(menus),
        "network_alone": {"code": own, "efficiency": float(alone_sig[test].mean()),
                          "held_out_rate_hz": alone_point.rate_hz, "held_out_rate_hz_err": alone_point.rate_err_hz,
                          "held_out_n_eff_fired": alone_point.n_eff_fired,
                          "metrics_efficiency": quoted["signal_efficiency"]},
        "check": {"retuned_code_equals_run": alone_t == own, "retuned_code": alone_t},
        "chosen": describe(chosen), "best_on_test": describe(best_test),
        "lost_by_network": int(lost.sum()),
        "lost_with_any_object_at_1khz_alone": _union_lost(obj_sig, at_1khz, lost, test),
        "lost_with_object_at_1khz_alone": {k: _with_object(obj_sig[k], c, lost, test, alone_sig, built.lepton_like)
                                           for k, c in at_1khz.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--objects", default="configs/l1_ttbar_event_jets_objects_pu60.yaml")
    parser.add_argument("--target-khz", type=float, default=10.0)
    args = parser.parse_args()
    out = [study(r, args.objects, args.target_khz * 1e3) for r in args.runs]
    gains = [o["chosen"]["gain_over_network"] for o in out]
    print(json.dumps({"per_run": out, "mean_chosen_gain": float(np.mean(gains)),
                      "seed_spread_over_sqrt_n": float(np.std(gains, ddof=1) / np.sqrt(len(gains)))
                      if len(gains) > 1 else None}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
