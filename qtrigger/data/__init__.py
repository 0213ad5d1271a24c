"""Data (second in the flow, after ``config``): ROOT files in, plain tables out.

- :mod:`~qtrigger.data.reader` — NanoAOD ``Events`` → :class:`~qtrigger.data.reader.JetTable` (one row per
  jet, with event, sample and weight), truth labels, the split by event, branch checks;
- :mod:`~qtrigger.data.samples` — each file's ``Runs`` tree (cross sections, pTHat bins, zero bias) and the
  stitching of binned samples into per-event weights.
"""
