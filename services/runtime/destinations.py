"""Where the system may send webhooks: https only, and never to this host or a private network, unless a
setting allows it (``CIRCLES_WEBHOOK_ALLOW_LOOPBACK_HTTP`` for the development stack's test receivers,
``CIRCLES_WEBHOOK_ALLOW_PRIVATE`` for an agency reached over a private link).

A webhook URL is the agency's to give, so without this a registered URL (or a DNS name that later resolves
to an internal address) would make the notifications worker send requests into the scheme's own network
(server-side request forgery). ``check_url`` runs when an agency is registered and before each delivery;
``check_address`` on every address the name resolves to, at connection time (``GuardedResolver``, in
``services/runtime/resolver.py``: it needs aiohttp, which every process imports this module's policy
without)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class DestinationRefused(OSError):
    """The URL or address may not receive webhooks (the reason says why; no retry will help)."""


@dataclass(frozen=True)
class DestinationPolicy:
    allow_loopback_http: bool = False
    allow_private: bool = False


def check_address(address: str, policy: DestinationPolicy) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        if not policy.allow_loopback_http:
            raise DestinationRefused(f"{address} is this host (loopback)")
        return
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local or ip.is_reserved:
        raise DestinationRefused(f"{address} is no public address")
    if (ip.is_private or not ip.is_global) and not policy.allow_private:
        raise DestinationRefused(f"{address} is a private address")


def check_url(url: str, policy: DestinationPolicy) -> None:
    """The URL's own checks: https (plain http only to loopback, when allowed), a host, no credentials, and
    when the host is an address (or a loopback name), that address."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise DestinationRefused("a webhook URL needs a host")
    if parts.username or parts.password:
        raise DestinationRefused("a webhook URL carries no user name or password")
    loopback_name = host in LOOPBACK_NAMES
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if parts.scheme == "http":
        is_loopback = loopback_name or (literal and ipaddress.ip_address(host).is_loopback)
        if not (policy.allow_loopback_http and is_loopback):
            raise DestinationRefused("a webhook URL must be https")
    elif parts.scheme != "https":
        raise DestinationRefused("a webhook URL must be https")
    if loopback_name and not policy.allow_loopback_http:
        raise DestinationRefused(f"{host} is this host (loopback)")
    if literal:
        check_address(host, policy)
