"""``qtrigger data generate|validate``: data tools."""

from __future__ import annotations

import argparse

from qtrigger.generate import DEFAULT_CHUNK_SIZE, PROCESSES


def add_parser(commands) -> None:
    """Register ``data`` and its subcommands."""
    data = commands.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    generate = data.add_parser("generate", help="generate a NanoAOD-schema jet sample with Pythia 8 + FastJet")
    add_generate_arguments(generate)
    generate.set_defaults(handler=handle_generate)

    validate = data.add_parser("validate", help="overlay a generated sample's features on a NanoAOD file's")
    validate.add_argument("--generated", nargs="+", required=True, metavar="FILE", help="generated ROOT file(s)")
    validate.add_argument("--reference", nargs="+", required=True, metavar="FILE", help="NanoAOD ROOT file(s)")
    validate.add_argument("-o", "--output", default="validation", help="output directory (plots, tables)")
    validate.set_defaults(handler=handle_validate)


def handle_validate(args) -> int:
    """Validate and print the summary."""
    import json

    from qtrigger.runs.validate import validate_sample

    result = validate_sample(args.generated, args.reference, args.output)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "features"} for k, v in result.items()}, indent=2))
    print(f"plots and table: {args.output}/validation.md")
    return 0


def _event_counts(text: str) -> list[int]:
    try:
        return [int(x) for x in str(text).split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N1,N2,... (events per pTHat bin), got {text!r}") from None


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``qtrigger data generate`` options to ``parser``."""
    parser.add_argument("--process", required=True, choices=PROCESSES, help="physics process")
    parser.add_argument("--events", type=_event_counts, metavar="N",
                        help="number of events (with --pthat-bins: per bin, or N1,N2,... one per bin); "
                             "required unless --library")
    parser.add_argument("--seed", type=int, default=1, help="base random seed (default 1)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.root|DIR/|PREFIX",
                        help="output ROOT file; with --pthat-bins a directory or a file-name prefix")
    parser.add_argument("--pthat-min", type=float, default=30.0, help="pTHat cut for qcd/wjets [GeV] (default 30)")
    parser.add_argument("--pthat-bins", default=None, metavar="E0,E1,...",
                        help="pTHat bin edges [GeV] for qcd/wjets: bins [E0,E1), ..., [En,inf), one file each")
    parser.add_argument("--bias-pow", type=float, default=None,
                        help="pTHat bias power for qcd/wjets (weighted events; default: unbiased)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                        help=f"events per seeded chunk (default {DEFAULT_CHUNK_SIZE}); part of what fixes the sample")
    parser.add_argument("--workers", type=int, default=None,
                        help="LocalCluster worker processes (default: the cores; 0 = in this process)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on an existing Dask scheduler, e.g. tcp://host:8786 (shared filesystem needed)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="legacy: K parts seeded seed*1000+k (reproduces samples made with --jobs)")
    parser.add_argument("--pileup", type=float, default=0.0, metavar="MU",
                        help="mean inelastic pileup interactions per crossing, at most 400 (default 0); with "
                             "--process minbias: zero-bias crossings of Poisson(MU) interactions")
    parser.add_argument("--library", type=int, default=None, metavar="N",
                        help="with --process minbias: write a pileup library of N inelastic interactions into the "
                             "folder -o (resumable; --chunk-size interactions per file, e.g. 5000)")
    parser.add_argument("--pileup-library", default=None, metavar="DIR",
                        help="overlay pileup drawn from this library (made with --library) instead of generating it")
    parser.add_argument("--pileup-max-reuse", type=int, default=10, metavar="K",
                        help="refuse a sample that would draw any library interaction more than K times (default 10)")
    parser.add_argument("--mitigation", default="auto", choices=("auto", "none", "run3", "phase2"),
                        help="pileup mitigation of the jets (with --pileup): run3 = calorimeter-like thresholds and "
                             "rho*A subtraction, phase2 = L1 vertex, charged pileup removed, rho*A on the rest; "
                             "auto (default): run3 below mu 140, phase2 from it (docs/generation.md)")
    parser.add_argument("--jet-seed-gev", type=float, default=None, metavar="GEV",
                        help="with --pileup: a mitigated jet needs a constituent above GEV (default: 5 for run3, 4 for "
                             "phase2)")
    parser.add_argument("--jet-pt-min", type=float, default=20.0, help="jet pt cut [GeV] (default 20)")
    parser.add_argument("--jet-eta-max", type=float, default=2.5, help="jet |eta| cut (default 2.5)")
    parser.add_argument("--d0-resolution-um", type=float, default=None, metavar="UM",
                        help="fixed L1-track d0 resolution [um] (default: pT-dependent, docs/generation.md)")
    parser.add_argument("--z0-resolution-um", type=float, default=None, metavar="UM",
                        help="fixed L1-track z0 resolution [um] (default: pT-dependent)")
    parser.add_argument("--no-candidates", action="store_true",
                        help="leave out the JetCand_* constituents (keeps the Jet_ displaced-track summaries)")
    parser.add_argument("--l1-objects", action="store_true",
                        help="also write L1-like L1Jet, L1EG, L1Tau, L1Mu and L1EtSum collections in CMSSW's L1 NanoAOD "
                             "schema (every other branch unchanged; docs/generation.md)")
    parser.add_argument("--l1-jet-response", type=float, default=None, metavar="R",
                        help="with --l1-objects: L1 jet pT response (default 1.0)")
    parser.add_argument("--l1-jet-resolution", default=None, metavar="S,C",
                        help="with --l1-objects: L1 jet resolution sigma/pT = sqrt(S^2/pT + C^2) (default 1.0,0.05)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _counts_text(summary: dict) -> str:
    flav = summary["jets_per_flavour"]
    return (f"{summary['events']} events, {summary['jets']} jets "
            f"(b {flav[5]}, c {flav[4]}, light {flav[0]})")


def _where_run(workers: int | None) -> str:
    if workers is None:
        return "on the given Dask cluster"
    return "in this process" if workers == 0 else f"{workers} Dask worker{'s' if workers > 1 else ''}"


def handle_generate(args: argparse.Namespace) -> int:
    """Run :func:`generate_sample` from parsed CLI arguments; print one line per output file."""
    from qtrigger.errors import QTriggerError
    from qtrigger.generate import generate_sample

    if args.library is not None:
        return _handle_library(args)
    if args.events is None:
        raise QTriggerError("--events N is required (or --library N with --process minbias)")
    s = generate_sample(
        process=args.process, n_events=args.events, seed=args.seed, output=args.output,
        pthat_min=args.pthat_min, jobs=args.jobs, pileup=args.pileup, jet_pt_min=args.jet_pt_min,
        jet_eta_max=args.jet_eta_max, bias_pow=args.bias_pow, overwrite=args.overwrite,
        pthat_bins=args.pthat_bins, chunk_size=args.chunk_size, workers=args.workers, scheduler=args.scheduler,
        d0_resolution_um=args.d0_resolution_um, z0_resolution_um=args.z0_resolution_um,
        candidates=not args.no_candidates, pileup_library=args.pileup_library,
        pileup_max_reuse=args.pileup_max_reuse, mitigation=args.mitigation, l1_objects=_l1_settings(args),
        jet_seed_gev=args.jet_seed_gev,
    )
    if len(s["bins"]) > 1:
        for b in s["bins"]:
            print(f"{b['output']}: {_counts_text(b)}, xsec {b['xsec_mb']:.4g} +- {b['xsec_err_mb']:.2g} mb")
    where = s["output"] if len(s["bins"]) == 1 else f"{len(s['outputs'])} pTHat-bin files"
    print(f"{where}: {_counts_text(s)}, xsec {s['xsec_mb']:.4g} +- {s['xsec_err_mb']:.2g} mb, "
          f"{s['seconds']:.1f} s, {s['jets_per_s']:.0f} jets/s ({s['chunks']} chunks, {_where_run(s['workers'])})"
          + _pileup_text(s["pileup"]))
    return 0


def _l1_settings(args: argparse.Namespace):
    """False, or the L1 object settings of ``--l1-objects`` with ``--l1-jet-response``/``--l1-jet-resolution``."""
    from qtrigger.errors import QTriggerError
    from qtrigger.generate import L1Settings

    tuned = args.l1_jet_response is not None or args.l1_jet_resolution is not None
    if not args.l1_objects:
        if tuned:
            raise QTriggerError("--l1-jet-response and --l1-jet-resolution need --l1-objects")
        return False
    kwargs = {}
    if args.l1_jet_response is not None:
        kwargs["jet_response"] = args.l1_jet_response
    if args.l1_jet_resolution is not None:
        try:
            kwargs["jet_stochastic"], kwargs["jet_constant"] = (float(x) for x in args.l1_jet_resolution.split(","))
        except ValueError:
            raise QTriggerError(f"--l1-jet-resolution must be two numbers S,C, got {args.l1_jet_resolution!r}") from None
    return L1Settings(**kwargs)


def _pileup_text(p: dict) -> str:
    if not p["mu"]:
        return ""
    source = f"library {p['library']}, reuse {p['reuse_mean']:.2f} (max {p['reuse_max']})" if p["library"] else "direct"
    return f"; pileup mu {p['mu']:g} (sigma_inel {p['sigma_inel_mb']:.2f} mb, {source}, mitigation {p['mitigation']})"


def _handle_library(args: argparse.Namespace) -> int:
    """``--library N``: generate (or resume) a pileup library; one line."""
    from qtrigger.errors import QTriggerError
    from qtrigger.generate import generate_library

    if args.process != "minbias" or args.events is not None or args.pileup or args.pthat_bins:
        raise QTriggerError("--library N makes a pileup library: use it with --process minbias and -o DIR, "
                            "without --events, --pileup or --pthat-bins")
    s = generate_library(args.library, args.seed, args.output, chunk_size=args.chunk_size, workers=args.workers,
                         scheduler=args.scheduler, overwrite=args.overwrite)
    print(f"{s['output']}: {s['interactions']} inelastic interactions in {s['chunks']} chunks ({s['generated']} made "
          f"now), {s['particles']:.1f} particles each (|eta| < 3), sigma_inel {s['sigma_inel_mb']:.2f} mb, "
          f"hash {s['hash']}, {s['seconds']:.1f} s")
    return 0
