"""Firmware stage: QKeras -> hls4ml project -> C-simulation, checks, vendor build, RTL.

Submodules, in data-flow order:

- :mod:`~qtrigger.firmware.adapter` — the one place that calls hls4ml (Keras-2 front end).
- :mod:`~qtrigger.firmware.convert` — layer precisions from the exact network, write and compile.
- :mod:`~qtrigger.firmware.csim` — C-simulation, code comparison, stress inputs, :class:`CsimResult`.
- :mod:`~qtrigger.firmware.check` — ``hls check``: bit-exactness proof, trace diagnosis, precision profile.
- :mod:`~qtrigger.firmware.vendor` — Vivado/Vitis HLS build command and report reading.
- :mod:`~qtrigger.firmware.rtl` — da4ml Verilog of the network, Verilator build, RTL check.

``from qtrigger import firmware; firmware.convert(...)`` keeps working: the names of the
former ``qtrigger/firmware.py`` are re-exported here. hls4ml and TensorFlow are imported
only inside the functions that need them.
"""

from qtrigger.firmware.convert import HLSProject, convert, hls_layer_config, project_name_for
from qtrigger.firmware.csim import (
    CsimComparison,
    CsimResult,
    compare_codes,
    csim_predict_codes,
    float32_reference_codes,
    run_csim,
    stress_inputs,
)

__all__ = [
    "HLSProject",
    "convert",
    "hls_layer_config",
    "project_name_for",
    "CsimComparison",
    "CsimResult",
    "compare_codes",
    "csim_predict_codes",
    "float32_reference_codes",
    "run_csim",
    "stress_inputs",
]
