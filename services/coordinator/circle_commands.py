"""The coordinator's and the volunteers' pages (and the sample data) write circle commands as the
``circles circle`` command does: to ``circles.circles.commands.v1``, keyed by referral id, minutes and
concern summaries sealed under the referral's own data key, every id made here (a command sent twice is
applied once). The circles worker applies them and tells the outcome on its facts topic.

The pages only read the referrals' data keys: a referral without one was erased, and its circle takes no
more minutes or concerns (nothing new is sealed for an erased person).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Protocol

from schemas.events.circles import (
    CircleCommand,
    CircleOutcome,
    ConcernLevel,
    CoreMemberAttendance,
    EndCircle,
    EndReason,
    RaiseConcern,
    RecordMeeting,
    RecordReview,
    SubmitMinutes,
)
from services.protection.sealer import Sealer, build_sealer
from services.runtime.clock import Clock, SystemClock, clock_from_setting
from services.runtime.kafka import Publisher
from services.runtime.logs import get_logger
from services.runtime.settings import RuntimeSettings
from services.runtime.supervision import together

log = get_logger(__name__)


class CircleErased(Exception):
    """The circle's referral was erased: nothing more is recorded for it."""


class CommandSink(Protocol):
    async def send(self, command: CircleCommand) -> None: ...


class CircleCommands:
    """Builds the commands (ids made here) and hands them to a sink."""

    def __init__(self, sink: CommandSink, clock: Clock | None = None) -> None:
        self.sink = sink
        self.clock = clock or SystemClock()

    def _base(self, referral_id: uuid.UUID, by: str) -> dict[str, object]:
        return {
            "command_id": uuid.uuid4(),
            "referral_id": referral_id,
            "requested_by": by,
            "requested_at": self.clock.now(),
        }

    async def meeting(
        self,
        referral_id: uuid.UUID,
        by: str,
        *,
        held_on: date | str,
        attendance: CoreMemberAttendance | str,
        volunteer_ids: list[str],
        minutes: str | None = None,
    ) -> RecordMeeting:
        command = RecordMeeting.model_validate(
            self._base(referral_id, by)
            | {
                "meeting_id": uuid.uuid4(),
                "held_on": held_on,
                "core_member_attendance": attendance,
                "volunteer_ids": volunteer_ids,
                "minutes": minutes or None,
            }
        )
        await self.sink.send(command)
        return command

    async def minutes(
        self, referral_id: uuid.UUID, by: str, *, meeting_id: uuid.UUID, minutes: str
    ) -> SubmitMinutes:
        command = SubmitMinutes.model_validate(
            self._base(referral_id, by) | {"meeting_id": meeting_id, "minutes": minutes}
        )
        await self.sink.send(command)
        return command

    async def concern(
        self,
        referral_id: uuid.UUID,
        by: str,
        *,
        level: ConcernLevel | str,
        summary: str,
        raised_by: str | None = None,
    ) -> RaiseConcern:
        command = RaiseConcern.model_validate(
            self._base(referral_id, by)
            | {"concern_id": uuid.uuid4(), "level": level, "summary": summary, "raised_by": raised_by}
        )
        await self.sink.send(command)
        return command

    async def review(self, referral_id: uuid.UUID, by: str, *, held_on: date | str) -> RecordReview:
        command = RecordReview.model_validate(
            self._base(referral_id, by) | {"review_id": uuid.uuid4(), "held_on": held_on}
        )
        await self.sink.send(command)
        return command

    async def end(
        self,
        referral_id: uuid.UUID,
        by: str,
        *,
        outcome: CircleOutcome | str,
        reason: EndReason | str | None,
        ended_on: date | str,
    ) -> EndCircle:
        command = EndCircle.model_validate(
            self._base(referral_id, by) | {"outcome": outcome, "reason": reason or None, "ended_on": ended_on}
        )
        await self.sink.send(command)
        return command


class KafkaCommandSink:
    """Publishes commands, sealed with the referral's existing data key (never a new one)."""

    def __init__(self, settings: RuntimeSettings, source: str, timeout_s: float | None = 10.0) -> None:
        self.sealer: Sealer = build_sealer(
            settings, ["referral"], client_id="circles-coordinator-commands-keys"
        )
        self.publisher = Publisher(
            settings.bootstrap_servers(),
            source,
            prefix=settings.topic_prefix,
            sealer=self.sealer,
            timeout_s=timeout_s,
            clock=clock_from_setting(settings.clock),
        )

    async def start(self) -> None:
        await together(self.sealer.start(), self.publisher.start())

    async def stop(self) -> None:
        await self.publisher.stop()
        await self.sealer.stop()

    async def __aenter__(self) -> KafkaCommandSink:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def send(self, command: CircleCommand) -> None:
        subject = command.data_subject()
        store = self.sealer.store_for(subject)
        if store.current(subject) is None:
            await store.sync()
            if store.current(subject) is None:
                raise CircleErased(f"circle {command.circle_id} was erased with its referral")
        envelope = self.publisher.envelope(command, str(command.command_id))
        await self.publisher.publish(command, envelope)
        log.info(
            "circle_command_sent",
            command=command.event_type,
            referral_id=str(command.referral_id),
            requested_by=command.requested_by,
        )
