"""FPGA parts, families, their resources and clock facts: one owner for each.

Every module that needs a part name, a family's multiplier geometry or delays, a part's
available resources or hls4ml's clock uncertainty reads it here. Nothing heavy is
imported (the CLI and the config import this module).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qtrigger.errors import QTriggerError

DEFAULT_PART = "xcvu9p-flga2104-2L-e"
CLOCK_UNCERTAINTY = 0.125  # hls4ml's default ClockUncertainty (12.5 %)


@dataclass(frozen=True)
class DeviceFamily:
    """Multiplier geometry and rough delays of one FPGA family (slowest speed grade)."""

    name: str
    dsp_a_bits: int
    dsp_b_bits: int
    t_lut_ns: float
    t_carry_ns_per_bit: float
    t_dsp_ns: float

    def t_add(self, width: int) -> float:
        """Delay of one LUT/carry-chain adder of ``width`` bits, routing included."""
        return self.t_lut_ns + self.t_carry_ns_per_bit * width


FAMILIES = {
    "7series": DeviceFamily("7-series", 25, 18, 0.5, 0.03, 3.9),
    "ultrascale": DeviceFamily("UltraScale(+)", 27, 18, 0.35, 0.015, 2.5),
    "versal": DeviceFamily("Versal", 27, 24, 0.35, 0.015, 2.5),
}

# Available resources of parts whose figures we have from a report or hls4ml material.
DEVICE_RESOURCES = {
    "xc7z020": {"lut": 53200, "ff": 106400, "dsp": 220, "bram": 280},
    "xc7vx690t": {"lut": 433200, "ff": 866400, "dsp": 3600, "bram": 1470},  # the Run-3 Global Trigger's (MP7)
    "xcvu9p": {"lut": 1182240, "ff": 2364480, "dsp": 6840, "bram": 4320},
}


def device_family(part: str) -> DeviceFamily:
    """The :class:`DeviceFamily` of a Xilinx part name (raises QTriggerError if unknown)."""
    name = str(part).strip().lower()
    if name.startswith("xc7"):
        return FAMILIES["7series"]
    if re.match(r"xc(vu|ku|zu|au)", name):
        return FAMILIES["ultrascale"]
    if re.match(r"xcv[cpemh]", name):
        return FAMILIES["versal"]
    raise QTriggerError(
        f"part {part!r}: unknown FPGA family; expected a Xilinx part name starting with xc7 (7-series), "
        "xcvu/xcku/xczu/xcau (UltraScale/UltraScale+) or xcvc/xcvp/xcve/xcvm/xcvh (Versal)"
    )


def part_key(part: str) -> str:
    """The device name of a full part string (``xcvu9p-flga2104-2L-e`` -> ``xcvu9p``)."""
    return re.split(r"[-_]", str(part).lower())[0]


def device_resources(part: str) -> dict | None:
    """Available LUT/FF/DSP/BRAM of ``part`` when known, else None."""
    return DEVICE_RESOURCES.get(part_key(part))


def usable_clock_ns(clock_period_ns: float) -> float:
    """The part of a clock period HLS schedules logic into (hls4ml's clock uncertainty removed)."""
    return clock_period_ns * (1.0 - CLOCK_UNCERTAINTY)
