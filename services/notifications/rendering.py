"""Messages from templates: a subject, a plain-text and an HTML body per template, and the webhook body.

Templates are Jinja2 files in ``templates/`` (``<name>.txt.j2``, ``<name>.html.j2``, subjects in
``subjects.yaml``), written in plain English. They are given the fields of a ``NotificationContext`` and
nothing else, so a message can carry only references, statuses, codes, dates and links.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import yaml

from schemas.events.notifications import NotificationContext
from services.notifications.domain.delivery import DeliveryEntry

WEBHOOK_TEMPLATES = frozenset(
    {
        "referral_received",
        "referral_amended",
        "decision_made",
        "needs_information",
        "referral_withdrawn",
        "circle_formed",
        "circle_formed_outer_circle",
        "meeting_recorded",
        "concern_raised",
        "concern_escalated",
        "review_recorded",
        "circle_ended",
    }
)
"""Messages an agency's system can be sent; the coordinator is told by email."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("services.notifications", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the code: no check of their files at every message
    )


@cache
def subjects() -> dict[str, str]:
    text = resources.files("services.notifications").joinpath("templates/subjects.yaml").read_text()
    loaded: dict[str, str] = yaml.safe_load(text)
    return loaded


def template_names() -> list[str]:
    return sorted(subjects())


def _variables(context: NotificationContext) -> dict[str, Any]:
    values = {name: getattr(context, name) for name in NotificationContext.model_fields}
    values["status"] = context.status.value if context.status else None
    values["level"] = context.level.value if context.level else None
    values["failed_channel"] = context.failed_channel.value if context.failed_channel else None
    return values


@cache
def subject_template(template: str) -> jinja2.Template:
    """The subject line's template, compiled once (compiling it for every message was 5-7% of the
    notifications worker's time, issue 13; the bodies' templates are cached by the environment)."""
    source = '{% from "_text.j2" import status_text %}' + subjects()[template]
    return environment().from_string(source)


def render(template: str, context: NotificationContext) -> Rendered:
    """Subject, text and HTML of one message. Raises ``KeyError`` for an unknown template."""
    env = environment()
    variables = _variables(context)
    subject = " ".join(subject_template(template).render(variables).split())
    text = env.get_template(f"{template}.txt.j2").render(variables)
    html = env.get_template(f"{template}.html.j2").render(variables, subject=subject)
    return Rendered(subject=subject, text=text, html=html)


def webhook_body(entry: DeliveryEntry) -> bytes:
    """The JSON an agency's system receives: references and codes only, the same bytes on every attempt."""
    context = entry.context
    body: dict[str, Any] = {
        "event_id": str(entry.notification_id),
        "event_type": entry.template,
        "occurred_at": entry.requested_at.isoformat(),
        "referral_id": str(context.referral_id) if context.referral_id else None,
        "agency_reference": context.agency_reference,
        "status": context.status.value if context.status else None,
        "reason_codes": list(context.reason_codes),
        "link": context.link,
    }
    if context.due_on is not None:
        due = "next_review_due" if entry.template == "review_recorded" else "reassess_on"
        body[due] = context.due_on.isoformat()
    if context.circle_id is not None:
        body["circle_id"] = str(context.circle_id)
    if context.concern_id is not None:  # its id, level and link: never its summary
        body["concern_id"] = str(context.concern_id)
    if context.level is not None:
        body["level"] = context.level.value
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
