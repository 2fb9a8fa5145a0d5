"""Settings of the circles service (``CIRCLES_*`` environment variables): every period is one."""

from __future__ import annotations

from pydantic import Field

from services.circles.domain.circle import Periods
from services.runtime.settings import RuntimeSettings


class CirclesSettings(RuntimeSettings):
    minutes_due_hours: float = Field(
        default=48.0, gt=0, description="Minutes are due this long after the meeting's day began (London)"
    )
    concern_escalation_hours: float = Field(
        default=4.0,
        gt=0,
        description="An urgent concern not acknowledged this long after it was raised escalates",
    )
    review_every_months: int = Field(default=3, ge=1, le=24, description="A review is due this often")
    planned_months: int = Field(default=12, ge=1, le=60, description="A circle's planned course")
    deadline_check_interval_s: float = Field(
        default=30.0, gt=0, description="How often overdue minutes and concerns to escalate are looked for"
    )

    @property
    def periods(self) -> Periods:
        """The domain's periods; here, so that the command line need not import the worker."""
        return Periods(
            minutes_due_hours=self.minutes_due_hours,
            concern_escalation_hours=self.concern_escalation_hours,
            review_every_months=self.review_every_months,
            planned_months=self.planned_months,
        )
