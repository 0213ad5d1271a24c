"""Runs (after ``levels``, before ``scan`` and ``cli``): one run end to end, and the verbs on finished runs.

- :mod:`~qtrigger.runs.preflight` — every input, output folder and tool, checked before any work;
- :mod:`~qtrigger.runs.pipeline` — the stages in order, whatever the input level and model form;
- :mod:`~qtrigger.runs.report` — ``metrics.json``, ``report.md`` and the plots;
- :mod:`~qtrigger.runs.finished` — :class:`~qtrigger.runs.finished.FinishedRun`, the one way to open a run;
- :mod:`~qtrigger.runs.evaluation` — a finished run on other files (``qtrigger evaluate``);
- :mod:`~qtrigger.runs.rtl` — ``hls rtl`` and ``hls rtl-check`` on a finished run;
- :mod:`~qtrigger.runs.commands`, :mod:`~qtrigger.runs.compare`, :mod:`~qtrigger.runs.validate` — the other
  verbs the CLI calls (``hls check/build/report``, ``compare``, ``data validate``).
"""
