"""The score a network's seed compares with its threshold, computed from the network's integer output codes.

One interface, :class:`ScoreHead`, implemented once per kind of score; every stage of the event seed chain
asks the head and never which kind it holds:

- the integer reference (:meth:`ScoreHead.codes`, int64);
- the accept-bit C++ around the hls4ml network (:meth:`ScoreHead.cpp`);
- the event-seed RTL (:meth:`ScoreHead.trace`, da4ml).

Heads: :class:`FirstOutput` (a classifier's logit: the first output code, as it is) and
:class:`SumOfSquares` (a VAE encoder's anomaly score: sum_i mu_i^2 of its latent outputs, exact in integers:
code = sum_i c_i^2 on the LSB lsb_out^2). :class:`ScoredNetwork` is a network whose ``forward_codes`` and
``output_type`` answer with the score, so the Python chain reads one score column whatever the head.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from qtrigger.fixedpoint import FixedType


class ScoreHead:
    """How the seed's score code follows from the network's output codes (see the module docstring)."""

    name: str = ""

    def score_type(self, output_type: FixedType, n_outputs: int) -> FixedType:
        """The exact type of the score for network outputs of ``output_type`` (``n_outputs`` of them)."""
        raise NotImplementedError

    def codes(self, output_codes: np.ndarray) -> np.ndarray:
        """Per row, the score code (int64) from the (rows, outputs) output codes."""
        raise NotImplementedError

    def cpp(self, n_outputs: int) -> str:
        """C++ statements setting ``long long score`` from ``long long c[n_outputs]`` (the output codes)."""
        raise NotImplementedError

    def trace(self, outputs: list):
        """The score as one da4ml variable from the output variables (values = code x output LSB)."""
        raise NotImplementedError


class FirstOutput(ScoreHead):
    """A classifier's score: its (only) first output, unchanged."""

    name = "logit"

    def score_type(self, output_type, n_outputs):
        return output_type

    def codes(self, output_codes):
        return np.asarray(output_codes).reshape(len(output_codes), -1)[:, 0].astype(np.int64)

    def cpp(self, n_outputs):
        return "score = c[0];"

    def trace(self, outputs):
        return outputs[0]


class SumOfSquares(ScoreHead):
    """A VAE encoder's anomaly score: sum_i mu_i^2 over its outputs, exact (code sum c_i^2, LSB lsb_out^2)."""

    name = "sum_mu2"

    def score_type(self, output_type, n_outputs):
        largest = max(output_type.min_code ** 2, output_type.max_code ** 2) * n_outputs
        width = max(1, int(largest).bit_length())
        return FixedType(width, width - 2 * output_type.frac, False)

    def codes(self, output_codes):
        c = np.asarray(output_codes, np.int64).reshape(len(output_codes), -1)
        return (c * c).sum(axis=1).astype(np.int64)

    def cpp(self, n_outputs):
        return "score = 0;\n    for (int i = 0; i < N_OUTPUTS; i++) score += c[i] * c[i];"

    def trace(self, outputs):
        return balanced_sum([square(v) for v in outputs])


def balanced_sum(values: list):
    """The sum of ``values`` (da4ml variables or numbers) as a balanced adder tree: ceil(log2 n) adder levels deep,
    where a left-to-right sum is n - 1 levels deep (the sum itself is the same)."""
    values = list(values)
    if not values:
        raise ValueError("balanced_sum of no values")
    while len(values) > 1:
        values = [values[k] + values[k + 1] if k + 1 < len(values) else values[k] for k in range(0, len(values), 2)]
    return values[0]


SQUARE_TABLE_MAX = 1024  # outputs with at most this many values are squared by a lookup table (shallow), else v * v


def square(v):
    """v^2 of a da4ml variable, exact: a lookup table of every value's square when ``v`` takes at most
    SQUARE_TABLE_MAX values (2 adder levels for 8 bits, against ~8 for da4ml's variable multiplier), else ``v * v``."""
    if v.high == v.low:
        return v * v
    size = int(round((v.high - v.low) / v.step)) + 1
    if size > SQUARE_TABLE_MAX:
        return v * v
    values = float(v.low) + np.arange(size, dtype=np.float64) * float(v.step)
    return v.lookup(values * values)


HEADS = {"logit": FirstOutput(), "sum_mu2": SumOfSquares()}


@dataclass
class ScoredNetwork:
    """A network (:class:`~qtrigger.emulate.network.QuantizedNetwork` or HGQ2) with its score head.

    ``forward_codes`` gives the score codes as one column and ``output_type`` the score's exact type; every
    other attribute is the network's (``network`` itself for the raw outputs: hls4ml, C-simulation).
    """

    network: object
    head: ScoreHead
    n_outputs: int

    def __getattr__(self, name):
        if name in ("network", "head", "n_outputs"):
            raise AttributeError(name)
        return getattr(self.network, name)

    @property
    def output_type(self) -> FixedType:
        """The score's exact type."""
        return self.head.score_type(self.network.output_type, self.n_outputs)

    @property
    def output_codes_type(self) -> FixedType:
        """The network's own output type (what the score is computed from)."""
        return self.network.output_type

    def forward_codes(self, x: np.ndarray) -> np.ndarray:
        """Score codes, (rows, 1) int64."""
        return self.head.codes(self.network.forward_codes(x)).reshape(-1, 1)


def scored(network, head: str | None = None) -> ScoredNetwork:
    """``network`` with the head named ``head`` (``logit`` or ``sum_mu2``). A ScoredNetwork is returned as it is
    without ``head`` (else re-headed); a bare network gets ``head`` or ``logit`` (a classifier's seed)."""
    if isinstance(network, ScoredNetwork) and head is None:
        return network
    raw = network.network if isinstance(network, ScoredNetwork) else network
    last = raw.stages[-1]
    n_out = int(np.shape(getattr(last, "weight_codes", getattr(last, "kernel", None)))[-1])
    return ScoredNetwork(raw, HEADS[head or "logit"], n_out)


OBJECTIVE_HEADS = {"classifier": "logit", "autoencoder": "sum_mu2"}  # training.objective → the deployed score


def score_head_name(config) -> str:
    """The score head a run's ``training.objective`` deploys (``logit`` or ``sum_mu2``)."""
    return OBJECTIVE_HEADS[config.training.objective]
