"""Per-flavour AUCs and ROC curves where the user reads them: report rows and roc_flavour.png."""

import numpy as np

from qtrigger.results import ScoreMetrics
from qtrigger.runs.report import _flavour_rows, plot_flavour_roc


def test_flavour_rows_and_plot(tmp_path):
    qat = ScoreMetrics(auc=0.9)
    qat.extra["auc_by_flavour"] = {"test_jets": {"b_vs_light": 0.97654, "b_vs_c": 0.87}}
    twin = ScoreMetrics(auc=0.9)
    twin.extra["auc_by_flavour"] = {"test_jets": {"b_vs_light": 0.96, "b_vs_c": None}}
    assert _flavour_rows(qat, twin) == [("b vs light AUC", "0.9765 (float 0.9600)", "QAT, test jets"),
                                        ("b vs c AUC", "0.8700 (float n/a)", "QAT, test jets")]
    assert _flavour_rows(ScoreMetrics(auc=0.9), None) == []
    rng = np.random.default_rng(1)
    flavour = rng.choice([0, 4, 5], size=3000)
    scores = {"QAT (exact)": rng.normal(size=3000) + (flavour == 5)}
    plot_flavour_roc(tmp_path / "roc_flavour.png", flavour, scores)
    assert (tmp_path / "roc_flavour.png").stat().st_size > 10_000
