"""The CJ demo's figures: ability recovery, replicate agreement and first-position share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: PNG output only, no display needed

import matplotlib.pyplot as plt  # after matplotlib.use, so pyplot never picks a GUI backend
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from demos.cj_demo.analysis import SessionStats
from demos.cj_demo.design import Design

PANEL_SIZE = 4.6  # inches per panel


def recovery_figure(
    panels: Sequence[tuple[str, Design, SessionStats]], path: Path, *, caption: str
) -> None:
    """One panel per arm: true θ (centred) against θ̂ of the η-free fit with 1.96·SE bars.

    Panels share equal, common axis limits and an identity line, so arms compare at a glance.
    Raises `ValueError` without panels.
    """
    fig, axes = _figure(len(panels), caption)
    x_all = [design.theta - design.theta.mean() for _, design, _ in panels]
    reach = [np.abs(s.fit.theta) + 1.96 * s.fit.se for _, _, s in panels]
    limit = 1.05 * float(max(np.max(np.abs(np.concatenate(x_all))), np.max(np.concatenate(reach))))
    for ax, (label, _, stats), x in zip(axes, panels, x_all, strict=True):
        fit = stats.fit
        ax.errorbar(x, fit.theta, yerr=1.96 * fit.se, fmt="o", ms=4, capsize=3, alpha=0.8)
        ax.axline((0.0, 0.0), slope=1.0, linestyle="--", color="grey", linewidth=1)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
        ax.set_xlabel(r"true $\theta$ (logits, centred)")
        ax.set_ylabel(r"estimated $\hat\theta$ $\pm$ 1.96 SE (logits)")
        ax.set_title(
            f"{label}\nSpearman {stats.spearman:.3f}, RMSE {stats.rmse:.2f}\n"
            f"SSR {stats.ssr:.2f}, coverage {stats.coverage:.0%}",
            fontsize=10,
        )
    _save(fig, path)


def agreement_figure(
    panels: Sequence[tuple[str, SessionStats]], path: Path, *, caption: str
) -> None:
    """Per arm, the H0 pmf of D (replicate pairs whose winners differ) and the observed D.

    Raises `ValueError` without panels.
    """
    fig, axes = _figure(len(panels), caption)
    for ax, (label, stats) in zip(axes, panels, strict=True):
        test = stats.replicate
        support = np.flatnonzero(test.pmf > 1e-6)
        low, high = min(int(support.min()), test.d), max(int(support.max()), test.d)
        d = np.arange(low, high + 1)
        ax.bar(
            d, test.pmf[d], width=0.85, color="tab:blue", alpha=0.7, label="H0: fresh judgements"
        )
        ax.axvline(test.d, color="tab:red", linewidth=2, label=f"observed D = {test.d}")
        ax.set_xlabel("replicate pairs with different winners (D)")
        ax.set_ylabel("probability under H0")
        ax.set_title(
            f"{label}\nD = {test.d} (expected {test.expected:.1f}), p = {test.p_value:.2g}\n"
            f"agreement {test.agreement:.0%} (expected {test.expected_agreement:.0%})",
            fontsize=10,
        )
        ax.legend(fontsize=8)
    _save(fig, path)


def position_figure(
    panels: Sequence[tuple[str, SessionStats]], path: Path, *, caption: str
) -> None:
    """First-position win share per arm with its Wilson 95% interval and a line at 0.5.

    Arms whose order the service did not randomize are marked: their share is confounded with
    the caller's order. Raises `ValueError` without panels.
    """
    if not panels:
        raise ValueError("a figure needs at least one panel")
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(panels) + 2.0), 4.2))
    shares = np.array([s.first_position_share for _, s in panels])
    low = np.array([s.first_ci95[0] for _, s in panels])
    high = np.array([s.first_ci95[1] for _, s in panels])
    positions = np.arange(len(panels))
    ax.errorbar(positions, shares, yerr=[shares - low, high - shares], fmt="o", capsize=5, ms=7)
    ax.axhline(0.5, linestyle="--", color="grey", linewidth=1, label="no position bias")
    labels = [
        label if s.randomized_judgements == s.judgements else f"{label}\n(order not randomized)"
        for label, s in panels
    ]
    ax.set_xticks(positions, labels)
    ax.set_xlim(-0.6, len(panels) - 0.4)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("share of wins by the essay presented first")
    ax.set_title("First-position win share (Wilson 95% interval)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.text(0.5, -0.02, caption, ha="center", va="top", fontsize=8, wrap=True)
    _save(fig, path)


def _figure(count: int, caption: str) -> tuple[Figure, list[Axes]]:
    """A row of `count` panels with the caption under them."""
    if count < 1:
        raise ValueError("a figure needs at least one panel")
    fig, axes = plt.subplots(
        1, count, figsize=(PANEL_SIZE * count, PANEL_SIZE + 0.8), squeeze=False
    )
    fig.text(0.5, -0.02, caption, ha="center", va="top", fontsize=8, wrap=True)
    return fig, list(axes[0])


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
