"""One plot style for every qtrigger figure (mplhep), labelled as particle-level simulation."""

from __future__ import annotations

from pathlib import Path

SIMULATION_LABEL = "Simulation (particle level)"
"""Generated jets have no detector response: never put an experiment's label on them."""


def style():
    """``matplotlib.pyplot`` with the Agg backend and the shared mplhep style (no experiment branding)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        import mplhep

        plt.style.use(mplhep.style.ROOT)
    except (ImportError, AttributeError, OSError):  # style is cosmetic
        pass
    return plt


def label_simulation(ax, text: str = SIMULATION_LABEL, fontsize: int = 13) -> None:
    """The sample label in the top-left corner of a physics plot."""
    ax.text(0.02, 0.97, text, transform=ax.transAxes, fontsize=fontsize, va="top", ha="left")


def save(fig, path: str | Path, dpi: int = 90) -> None:
    """Lay out, write and close a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    import matplotlib.pyplot as plt

    plt.close(fig)
