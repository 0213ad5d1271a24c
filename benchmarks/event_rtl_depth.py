"""Where the adder levels of an event seed's RTL are: the front end, each layer, the score head, the comparator.

    python benchmarks/event_rtl_depth.py runs/l1_anomaly

Traces the seed chain of a finished event-level run as ``qtrigger hls rtl`` writes it (da4ml, no Verilator, no
yosys: about 30 s) and prints the da4ml adder level at which each part's last value is ready, the widest
accumulator, the levels per pipeline stage at the config's clock and the stages (= cycles at II 1).
"""

from __future__ import annotations

import argparse

import numpy as np


def depth_report(run_dir: str) -> dict:
    """Adder levels of each part of the run's seed chain (see the module docstring)."""
    from da4ml.trace import FixedVariableArray, to_pipeline

    from qtrigger.emulate.score import score_head_name, scored
    from qtrigger.emulate.sets import extract_any_network
    from qtrigger.firmware.rtl import SOLVER_OPTIONS, _quantize, default_latency_cutoff
    from qtrigger.inputs.object_event import event_input_spec
    from qtrigger.runs.finished import FinishedRun
    from qtrigger.trigger import event_rtl
    from qtrigger.trigger import event_rtl_logic as logic

    run = FinishedRun.load(run_dir)
    network = scored(extract_any_network(run.load_model("qat")), score_head_name(run.config))
    spec, layout = event_input_spec(run.config), event_rtl.ChainLayout(event_input_spec(run.config))
    seeds, _ = event_rtl.event_chain_inputs(run, 1)
    ports = list(event_rtl._input_ports(network, spec, layout)._vars.ravel())
    hw = ports[0].hwconf
    valid, pt = ports[:layout.n_slots], ports[layout.n_slots:2 * layout.n_slots]
    ht, count, presel = logic.ht_count_preselection(valid, pt, spec, seeds[0], hw)
    codes = logic.program_codes(valid, pt, ports[2 * layout.n_slots:-1], spec.program, hw)

    def level(values) -> float:
        return max(float(getattr(v, "latency", 0.0)) for v in values)

    out = {"HT": level([ht]), "jet count": level([count]), "input program": level(codes)}
    x = [logic.bit(c, hw) * 2.0 ** -int(s) for c, s in zip(codes + [ht, count], run.preprocessor.shifts)]
    values = _quantize(FixedVariableArray(np.array(x, dtype=object), dict(SOLVER_OPTIONS)),
                       network.network.input_type, "half_even", "input")
    for stage in network.network.stages:
        kernel = np.asarray(stage.weight_codes, np.float64) * stage.weight_type.lsb
        values = values @ kernel + np.asarray(stage.bias_codes, np.float64) * stage.bias_type.lsb
        out[f"{stage.name} (accumulator {stage.accum_type})"] = level(values._vars.ravel())
        if stage.activation_type is not None:
            values = _quantize(values, stage.activation_type, "half_even", stage.name)
            out[f"{stage.name} activation {stage.activation_type}"] = level(values._vars.ravel())
    score = network.head.trace(list(values._vars.ravel()))
    out[f"score ({network.head.name})"] = level([score])
    out["accept"] = level([logic.accept_bit(score, ports[-1], presel, hw)])
    hls = run.config.hls
    cutoff = default_latency_cutoff(network.network, hls.clock_period_ns, hls.part)
    comb = event_rtl.trace_event_chain(network, spec, list(run.preprocessor.shifts), seeds[0], layout)
    stages = len(to_pipeline(comb, float(cutoff), verbose=False).solutions)
    out.update({"chain depth": float(comb.latency[1]), "levels per stage": cutoff, "stages": stages,
                "latency_ns": round(stages * hls.clock_period_ns, 1), "da4ml LUT-equivalents": float(comb.cost)})
    return out


def main() -> None:
    """Print :func:`depth_report` of one run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    for key, value in depth_report(parser.parse_args().run_dir).items():
        print(f"{key:60s} {value}")


if __name__ == "__main__":
    main()
