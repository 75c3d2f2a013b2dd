"""The ``alerting`` block a detector's params may carry: one sensitivity for every detector.

Declared here (light: pydantic only) so that ``DetectorParams`` can offer it to every detector; the
stage itself (``alerting.py``) is imported only by a request that sets it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import InvalidParams

#: The longest history the stage keeps (``window``), hence the most a stored stage state holds.
MAX_WINDOW = 10_000


#: The tail probability a sensitivity stands for: 10^-(4 - 3 * sensitivity), from 1 in 10,000
#: points (0) through about 1 in 300 (0.5) to 1 in 10 (1).
def tail_probability(sensitivity: float) -> float:
    """The calibrated tail probability at or below which a point is a candidate for an alert."""
    return float(10.0 ** -(4.0 - 3.0 * sensitivity))


class AlertingParams(BaseModel):
    """How the SDK turns a detector's per-point scores into alerts (``interfaces.alerting``).

    Every score is mapped to the same scale, the estimated probability that the series' own recent
    history (its last ``window`` points; an incident's join once it is over) scores at least as
    high: "0.999" means one point in a thousand for every detector. ``sensitivity`` sets one
    threshold on that scale for all detectors. Candidates at most ``quiet`` points apart are one
    incident, and so are the points the detector goes on flagging after one (``only_flagged``); it
    alerts once, when it has had ``min_duration`` consecutive candidates and
    ``cooldown`` points have passed since the previous alert. One that has alerted and spans
    ``rebaseline`` points, mostly candidates, is a confirmed level shift and the history restarts
    from it, so a persistent change alerts once instead of for as long as it lasts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitivity: float = Field(
        0.75,
        ge=0,
        le=1,
        description="One knob for every detector: 0 alerts only on scores of about 1 in 10,000 of "
        "the series' recent history, 0.5 about 1 in 300, 0.75 (the default) about 1 in 56, 1 "
        "about 1 in 10.",
    )
    min_duration: int = Field(
        1, ge=1, le=10_000, description="Points an incident must last before it alerts."
    )
    cooldown: int = Field(
        0,
        ge=0,
        le=10_000_000,
        description="Points after an alert during which no other incident alerts (an incident "
        "still going when it ends alerts at its next candidate that follows min_duration "
        "consecutive ones).",
    )
    quiet: int = Field(
        10,
        ge=1,
        le=100_000,
        description="Points without a candidate that end an incident: candidates at most this "
        "far apart are one incident, so a flapping change alerts once. With only_flagged, points "
        "the detector still flags keep the incident going too.",
    )
    rebaseline: int = Field(
        30,
        ge=0,
        le=100_000,
        description="An incident that has alerted and spans this many points, at least half of "
        "them candidates, is a level shift: the history restarts from its points, and alerts "
        "resume once the new level has its own history (0: never).",
    )
    window: int = Field(
        2000,
        ge=50,
        le=MAX_WINDOW,
        description="Points of recent history each score is calibrated against.",
    )
    min_history: int = Field(
        100,
        ge=10,
        le=MAX_WINDOW,
        description="Points of history needed before any point can alert.",
    )
    only_flagged: bool = Field(
        True,
        description="Only points the detector flags can alert (its own threshold still applies; "
        "the stage calibrates, filters and groups). False: the calibrated score alone decides.",
    )

    @model_validator(mode="after")
    def _history_fits_window(self) -> AlertingParams:
        if self.min_history > self.window:
            raise ValueError(
                f"min_history ({self.min_history}) cannot exceed window ({self.window})"
            )
        return self


def alerting_of(algorithm: object) -> AlertingParams | None:
    """The ``alerting`` block of an algorithm's params, if it declares one (a plugin's own
    param that happens to be called ``alerting`` is not one)."""
    found = getattr(getattr(algorithm, "params", None), "alerting", None)
    return found if isinstance(found, AlertingParams) else None


def refuse_alerting(algorithm: object, what: str) -> None:
    """The stage runs on one series (with or without a state); a matrix says so rather than
    ignore the block."""
    if alerting_of(algorithm) is not None:
        raise InvalidParams(
            f"params.alerting applies to the detection of one series; {what} does not take it "
            "yet: drop params.alerting",
            field="params.alerting",
        )
