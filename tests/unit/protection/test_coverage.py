"""Nothing personal goes to Kafka unsealed by accident: every event type with personal fields names its data
subject, whose kind has a keys topic; the one exception is what agencies write themselves."""

from __future__ import annotations

from schemas.events.referrals import InboundSubmission
from schemas.personal import personal_paths
from schemas.topics import EVENT_TYPES, SUBJECT_KEYS
from tests.samples import sample

PLAIN_FROM_AGENCIES = {InboundSubmission}
"""Written by agency systems; the referrals worker seals its dead letters and deletes what it processed."""


def test_every_event_with_personal_fields_has_a_subject_with_keys() -> None:
    for event_type in EVENT_TYPES.values():
        if not personal_paths(event_type) or event_type in PLAIN_FROM_AGENCIES:
            continue
        subject = sample(event_type).data_subject()
        assert subject is not None, f"{event_type.event_type} has personal fields but no data subject"
        assert subject.split(":", 1)[0] in SUBJECT_KEYS, f"{event_type.event_type}: no keys topic"
