"""Old import path of the trigger study (kept for one release): see :mod:`qtrigger.trigger.study`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qtrigger.trigger.events import leading_rank
from qtrigger.trigger.study import FLOAT_CODE_SCALE, SEED_TARGETS
from qtrigger.trigger.summary import seed_target_rows, trigger_summary_lines

__all__ = ["FLOAT_CODE_SCALE", "SEED_TARGETS", "leading_rank", "seed_target_rows", "trigger_study",
           "trigger_summary_lines"]


def trigger_study(config, prepared, jet_codes: np.ndarray, output_type, run_dir: Path, hls_dir: Path | None,
                  project_name: str | None, score_fn=None) -> dict:
    """The trigger study as the metrics.json dict (:func:`qtrigger.trigger.study.trigger_study`)."""
    from qtrigger.trigger.study import trigger_study as study

    return study(config, prepared, jet_codes, output_type, run_dir, hls_dir, project_name, score_fn=score_fn).to_json()
