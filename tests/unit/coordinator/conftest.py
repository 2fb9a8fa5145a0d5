"""The coordinator page fixture (``web``: the page with fakes), for every test of the page."""

from tests.unit.coordinator.test_web import web

__all__ = ["web"]
