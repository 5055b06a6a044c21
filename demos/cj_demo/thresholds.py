"""The CJ demo's pass/fail thresholds, calibrated by simulating sessions of the default design.

GENERATED: the block between the markers below is written by
`pdm run python -m demos.cj_demo.calibrate --sessions 10000 --seed 2026 --write`
(see documentation/cj-demo-calibration.md); edit the calibration, not the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """The rules a correct fresh arm passes when the rater's first-position effect is `eta`.

    Recovery rules apply to the η-free BT fit. `false_fail` maps each check's name, and
    "union", to the share of `sessions` simulated correct sessions that failed it.
    """

    eta: float
    spearman_min: float
    ssr_min: float
    coverage_min: float
    z_sd_max: float
    replicate_p_min: float = 0.001
    position_p_min: float = 0.001
    swapped_share_halfwidth: float
    sessions: int
    false_fail: Mapping[str, float] = field(default_factory=dict)

    @property
    def expects_no_position_bias(self) -> bool:
        """Calibrated for an unbiased rater: first-position and swap-balance checks apply."""
        return self.eta == 0.0


# BEGIN GENERATED
THRESHOLDS: dict[float, Thresholds] = {
    0.0: Thresholds(
        eta=0.0,
        spearman_min=0.7,
        ssr_min=0.64,
        coverage_min=0.76,
        z_sd_max=1.55,
        replicate_p_min=0.001,
        position_p_min=0.0001,
        swapped_share_halfwidth=0.13333333333333333,
        sessions=10000,
        false_fail={
            "replicate_p": 0.0008,
            "spearman": 0.0,
            "ssr": 0.0,
            "coverage": 0.0,
            "z_sd": 0.0,
            "first_position_p": 0.0,
            "swapped_share": 0.0,
            "union": 0.0008,
        },
    ),
    0.8: Thresholds(
        eta=0.8,
        spearman_min=0.75,
        ssr_min=0.65,
        coverage_min=0.76,
        z_sd_max=1.45,
        replicate_p_min=0.001,
        position_p_min=0.0001,
        swapped_share_halfwidth=0.13333333333333333,
        sessions=10000,
        false_fail={
            "replicate_p": 0.0009,
            "spearman": 0.0,
            "ssr": 0.0,
            "coverage": 0.0,
            "z_sd": 0.0,
            "union": 0.0009,
        },
    ),
}
# END GENERATED


def thresholds_for(eta: float) -> Thresholds:
    """The thresholds calibrated for a rater with first-position effect `eta`.

    Raises `ValueError` for an η that was not calibrated: thresholds do not carry over.
    """
    for calibrated, thresholds in THRESHOLDS.items():
        if abs(calibrated - eta) < 1e-9:
            return thresholds
    known = ", ".join(f"{value:g}" for value in sorted(THRESHOLDS))
    raise ValueError(f"no thresholds calibrated for eta={eta:g}; calibrated: {known}")
