"""A local webhook receiver for the demonstration: the demo agencies' systems, so that what the platform
sends them can be seen without a real agency.

``circles dev up`` registers each demo agency with ``http://127.0.0.1:<port>/agencies/<agency id>`` as its
webhook URL. Every delivery is checked as an agency would check it (``X-Circles-Signature`` with the
agency's webhook secret, 5 minutes' tolerance), kept as a JSON file in ``<data dir>/webhooks/`` (the body
as sent, the ``X-Circles-*`` headers and whether the signature held) and reported in one console line. A
delivery whose signature does not hold is refused (401), as a real receiver would, so the notifications
worker retries it and ``circles notifications status`` shows the failure. ``GET /`` lists what came, newest
first, as JSON (``GET /agencies/<agency id>`` the same for one agency).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from services.notifications.channels import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature

AGENCY_PATH = re.compile(r"^/agencies/(?P<agency>[a-z0-9][a-z0-9-]{0,62})/?$")
MAX_BODY = 1024 * 1024
LISTED = 200
OURS = "x-circles-"
"""The headers a delivery is kept with (signature, event id, template)."""


def summary_of(path: Path) -> dict[str, Any]:
    """What ``GET /`` shows of one kept delivery: where it went, what it was, whether it was signed."""
    kept = json.loads(path.read_text())
    body = kept.get("body") if isinstance(kept.get("body"), dict) else {}
    return {
        "file": path.name,
        "received_at": kept.get("received_at"),
        "agency_id": kept.get("agency_id"),
        "event_type": body.get("event_type"),
        "event_id": kept.get("headers", {}).get(EVENT_ID_HEADER),
        "referral_id": body.get("referral_id"),
        "signature": kept.get("signature"),
    }


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (a thread), for the stack's lifetime."""

    def __init__(
        self,
        folder: Path,
        port: int,
        secret_of: Callable[[str], str | None],
        say: Callable[[str], None],
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.secret_of = secret_of
        self.say = say
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, agency_id: str) -> str:
        return f"{self.url}/agencies/{agency_id}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def deliveries(self, agency_id: str | None = None) -> list[dict[str, Any]]:
        """The kept deliveries, newest first (at most ``LISTED``)."""
        found = (summary_of(path) for path in sorted(self.folder.glob("*.json"), reverse=True))
        return [row for row in found if agency_id is None or row["agency_id"] == agency_id][:LISTED]

    def receive(self, agency_id: str, headers: dict[str, str], body: bytes) -> int:
        """Check, keep and report one delivery; returns the HTTP status to answer."""
        secret = self.secret_of(agency_id)
        signature_header = headers.get(SIGNATURE_HEADER, "")
        if secret is None:
            verdict = "not checked (no secret known for this agency)"
        elif verify_signature(signature_header, body, secret, now=time.time()):
            verdict = "valid"
        else:
            verdict = "INVALID"
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        event_type = parsed.get("event_type") if isinstance(parsed, dict) else None
        kept = {
            "received_at": datetime.now(UTC).isoformat(),
            "agency_id": agency_id,
            "signature": verdict,
            "headers": {name: value for name, value in headers.items() if name.lower().startswith(OURS)},
            "body": parsed if parsed is not None else body.decode("utf-8", "replace"),
        }
        label = re.sub(r"[^a-z0-9_]", "", str(event_type or "unknown"))[:40] or "unknown"
        with self._lock:  # unique, ordered file names
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            path = self.folder / f"{stamp}-{agency_id}-{label}.json"
            path.write_text(json.dumps(kept, indent=2) + "\n")
        referral = parsed.get("referral_id") if isinstance(parsed, dict) else None
        about = f" referral {referral}" if referral else ""
        self.say(f"  webhook to {agency_id}: {event_type}{about}, signature {verdict}  ({path.name})")
        return 401 if verdict == "INVALID" else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "circles-dev-webhooks/1"

            def do_POST(self) -> None:  # http.server's name
                match = AGENCY_PATH.match(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if match is None or length > MAX_BODY:
                    self._answer(404 if match is None else 413, {"error": "not a webhook address"})
                    return
                body = self.rfile.read(length)
                status = receiver.receive(match["agency"], dict(self.headers.items()), body)
                self._answer(status, {"received": status == 200})

            def do_GET(self) -> None:
                if self.path in ("/", ""):
                    self._answer(200, receiver.deliveries())
                    return
                match = AGENCY_PATH.match(self.path)
                if match is None:
                    self._answer(404, {"error": "GET / or /agencies/<agency id>"})
                    return
                self._answer(200, receiver.deliveries(match["agency"]))

            def _answer(self, status: int, value: object) -> None:
                data = json.dumps(value, indent=2).encode() + b"\n"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the say() line
                return

        return Handler
