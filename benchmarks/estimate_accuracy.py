"""Error of qtrigger.estimate.latency's analytic estimate on published/measured points (prints JSON).

No constant of the model is fitted to these points. The weights of all three networks
are unknown, so each is rebuilt with Glorot-uniform weights (the Keras Dense default
initializer) and biases uniform in [-0.1, 0.1], seed 0, quantized to the stated type;
``seed_spread`` shows how much the estimate moves over seeds 0-9.

Usage: python benchmarks/estimate_accuracy.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qtrigger.emulate.network import DenseStage, QuantizedNetwork  # noqa: E402
from qtrigger.estimate.latency import estimate_latency_strategy  # noqa: E402
from qtrigger.fixedpoint import FixedType  # noqa: E402

AP16 = FixedType(16, 6)  # hls4ml default ap_fixed<16,6> (TRN, WRAP)
Q6_WEIGHT = FixedType(6, 1, True, "RND_CONV", "SAT")  # quantized_bits(6, 0, alpha=1)
Q6_RELU = FixedType(6, 0, False, "RND_CONV", "SAT")  # quantized_relu(6, 0)
FIGURES = ("lut", "ff", "dsp", "latency_cycles")


def glorot_network(sizes, weight_type, activation_type, seed, accum_type=AP16, input_type=AP16) -> QuantizedNetwork:
    """An MLP with Glorot-uniform weights quantized to ``weight_type``; last layer linear."""
    rng = np.random.default_rng(seed)
    stages = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        limit = np.sqrt(6.0 / (n_in + n_out))
        weights = rng.uniform(-limit, limit, size=(n_in, n_out))
        biases = rng.uniform(-0.1, 0.1, size=n_out)
        last = i == len(sizes) - 2
        stages.append(DenseStage(
            name=f"dense_{i}",
            weight_type=weight_type,
            bias_type=weight_type,
            weight_codes=weight_type.quantize_codes(weights),
            bias_codes=weight_type.quantize_codes(biases),
            accum_type=accum_type,
            activation_name=None if last else f"relu_{i}",
            activation_type=None if last else activation_type,
        ))
    return QuantizedNetwork("input", None, input_type, stages)


def shared_report_network(seed):
    """Dense 16→5 + ReLU, everything ap_fixed<16,6> (the ReLU is the network's last layer)."""
    net = glorot_network([16, 5], AP16, AP16, seed)
    net.stages[-1].activation_name, net.stages[-1].activation_type = "relu", AP16
    return net


REFERENCE_POINTS = [
    {
        "name": "shared_vivado_16x5_hls",
        "source": "/work/shared/data/hls4ml_reports/Vivado (Vivado HLS 2020.1 csynth; io_stream)",
        "build": shared_report_network,
        "clock_period_ns": 5.0, "part": "xc7z020-clg400-1",
        "reference": {"latency_cycles": 10, "lut": 2532, "ff": 7969, "dsp": 73},
    },
    {
        "name": "shared_vivado_16x5_synthesis",
        "source": "/work/shared/data/hls4ml_reports/Vivado/vivado_synth.rpt (Vivado 2020.1 synthesis)",
        "build": shared_report_network,
        "clock_period_ns": 5.0, "part": "xc7z020-clg400-1",
        "reference": {"lut": 1526, "ff": 2428, "dsp": 66},
    },
    {
        "name": "qkeras_paper_float_16-64-32-32-5",
        "source": "Coelho et al. 2021 (arXiv:2006.10159), VU9P 200 MHz, unconfirmed table values",
        "build": lambda seed: glorot_network([16, 64, 32, 32, 5], AP16, AP16, seed),
        "clock_period_ns": 5.0, "part": "xcvu9p-flgb2104-2-e",
        "reference": {"dsp": 1800, "latency_cycles": 9},
    },
    {
        "name": "qkeras_paper_q6_16-64-32-32-5",
        "source": "Coelho et al. 2021 (arXiv:2006.10159), VU9P 200 MHz, unconfirmed table values",
        "build": lambda seed: glorot_network([16, 64, 32, 32, 5], Q6_WEIGHT, Q6_RELU, seed),
        "clock_period_ns": 5.0, "part": "xcvu9p-flgb2104-2-e",
        "reference": {"dsp": 120, "latency_cycles": 11},
    },
]


def _estimate(point, seed):
    return estimate_latency_strategy(point["build"](seed), point["clock_period_ns"], 1, point["part"])


def accuracy(seeds=range(10)) -> list[dict]:
    """Estimate vs reference and % error for every point (seed 0), with the spread over ``seeds``."""
    rows = []
    for point in REFERENCE_POINTS:
        est = _estimate(point, 0)
        spread = [_estimate(point, s) for s in seeds]
        figures = {}
        for key, ref in point["reference"].items():
            value = getattr(est, key)
            values = [getattr(e, key) for e in spread]
            figures[key] = {
                "estimate": value,
                "reference": ref,
                "error_pct": round(100.0 * (value - ref) / ref, 1),
                "seed_spread": [min(values), max(values)],
            }
        rows.append({"point": point["name"], "source": point["source"], "part": point["part"],
                     "clock_period_ns": point["clock_period_ns"], "method": est.method, "figures": figures})
    return rows


def main() -> None:
    print(json.dumps({"weights": "Glorot-uniform (seed 0), biases U(-0.1, 0.1); unknown in every reference",
                      "points": accuracy()}, indent=2))


if __name__ == "__main__":
    main()
