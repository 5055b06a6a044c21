"""The CJ demo's figures are written as PNG files."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from demos.cj_demo.analysis import analyse
from demos.cj_demo.calibrate import simulate
from demos.cj_demo.design import make_design
from demos.cj_demo.plots import agreement_figure, position_figure, recovery_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CAPTION = "seed 20261206, N = 30, 15 comparisons per essay, sigma = 1.5, mock BT rater"


@pytest.fixture(scope="module")
def arms():
    design = make_design()
    rng = np.random.default_rng(1)
    configs: dict[str, tuple[Literal["randomized", "as_sent"], bool, float]] = {
        "fresh": ("randomized", False, 0.0),
        "cache": ("randomized", True, 0.0),
        "as sent, eta 0.8": ("as_sent", False, 0.8),
    }
    stats = {
        label: analyse(
            design, simulate(design, eta=eta, order=order, cache=cache, rng=rng), eta=eta
        )
        for label, (order, cache, eta) in configs.items()
    }
    return design, stats


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000


def test_recovery_figure(tmp_path, arms):
    design, stats = arms
    path = tmp_path / "recovery.png"
    recovery_figure([(label, design, s) for label, s in stats.items()], path, caption=CAPTION)
    assert_png(path)


def test_agreement_figure(tmp_path, arms):
    _, stats = arms
    path = tmp_path / "agreement.png"
    agreement_figure(list(stats.items()), path, caption=CAPTION)
    assert_png(path)


def test_position_figure(tmp_path, arms):
    _, stats = arms
    path = tmp_path / "position.png"
    position_figure(list(stats.items()), path, caption=CAPTION)
    assert_png(path)


def test_a_single_panel_works_and_none_is_refused(tmp_path, arms):
    design, stats = arms
    path = tmp_path / "one.png"
    recovery_figure([("fresh", design, stats["fresh"])], path, caption=CAPTION)
    assert_png(path)
    for draw in (agreement_figure, position_figure):
        with pytest.raises(ValueError, match="at least one panel"):
            draw([], tmp_path / "none.png", caption=CAPTION)
    assert not (tmp_path / "none.png").exists()
