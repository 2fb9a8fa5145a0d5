"""The circles worker: the single writer of circle state after formation.

Routes (thin adapters around ``domain``): matching's ``CircleFormed`` activates a circle; the commands
(CLI, pages, partner API) change it; ``ReferralErased`` drops it. A timer finds, through an index of each
circle's next deadline, minutes gone overdue and urgent concerns to escalate.
"""

from __future__ import annotations

from schemas.envelope import Envelope, Event
from schemas.topics import CIRCLES_COMMANDS, CIRCLES_EVENTS, CIRCLES_STATE, MATCHING_EVENTS, REFERRAL_EVENTS
from services.circles.settings import CirclesSettings
from services.protection.sealer import build_sealer
from services.runtime.clock import clock_from_setting
from services.runtime.logs import get_logger
from services.runtime.worker import StreamWorker, UnitOfWork

log = get_logger(__name__)
SERVICE = "circles"


class CirclesWorker:
    def __init__(self, settings: CirclesSettings) -> None:
        self.settings = settings
        self.clock = clock_from_setting(settings.clock)
        prefix = settings.topic_prefix
        self.events_topic = prefix + CIRCLES_EVENTS.name
        self.sealer = build_sealer(settings, ["referral"], client_id="circles-circles-keys")
        self.worker = StreamWorker(SERVICE, settings, self.sealer)
        self.state_topic = prefix + CIRCLES_STATE.name
        self.worker.route(CIRCLES_COMMANDS, self.on_command)
        self.worker.route(MATCHING_EVENTS, self.on_matching_event)
        self.worker.route(REFERRAL_EVENTS, self.on_referral_event)

    async def on_command(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """To come: commands applied to the circle."""

    async def on_matching_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """To come: CircleFormed activates a circle."""

    async def on_referral_event(self, uow: UnitOfWork, envelope: Envelope, event: Event) -> None:
        """To come: ReferralErased drops a circle."""
