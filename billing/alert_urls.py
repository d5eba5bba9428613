"""The request-forgery guard of alert webhooks and Slack: no alert is posted into the operator's network.

A channel's URL must be https and its host must resolve only to public addresses: every address
the name resolves to is checked (private, loopback, link-local, multicast, reserved, unspecified,
shared and IPv4-mapped forms are refused), when the channel is saved AND again at each send, and the
send connects to the very address it checked (`alert_post`), so a name that re-resolves between the
check and the connection (DNS rebinding) cannot redirect it. Redirects are never followed.
`ALERT_ALLOW_PRIVATE_URLS` (tests, local development) lifts both rules: http and private addresses.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

TIMEOUT_SECONDS = 10  # a receiver that takes longer is treated as down (and retried)
RESPONSE_KEEP = 300  # characters of a refusing receiver's answer kept in the log


class AlertUrlRefused(ValueError):
    """The URL may not receive alerts; the message says why, for the person who entered it."""


class AlertUrlUnreachable(Exception):
    """The host does not resolve now: a transient failure at send time (retried)."""


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What makes the address non-public, or None for a public address."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    for name, flag in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                       ("multicast", ip.is_multicast), ("unspecified", ip.is_unspecified),
                       ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if flag:
            return name
    return None if ip.is_global else "non-public"


def _allow_private() -> bool:
    return bool(getattr(settings, "ALERT_ALLOW_PRIVATE_URLS", False))


def alert_url_shape(url: str) -> tuple[str, str, int]:
    """Check the URL's form (scheme, host); return (scheme, host, port). Resolves nothing."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise AlertUrlRefused(f"not a valid URL: {error}") from None
    allowed = ("https", "http") if _allow_private() else ("https",)
    if parts.scheme not in allowed:
        raise AlertUrlRefused("the URL must start with https://")
    if not parts.hostname:
        raise AlertUrlRefused("the URL has no host")
    if parts.username or parts.password:
        raise AlertUrlRefused("the URL may not carry a user name or password")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def alert_url_resolve(url: str) -> list[str]:
    """Every address the URL's host resolves to, all of them public (else AlertUrlRefused).

    A name that does not resolve raises AlertUrlUnreachable (a refusal at save, a retry at send).
    """
    _, host, port = alert_url_shape(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise AlertUrlUnreachable(f"{host} does not resolve ({error})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not _allow_private():
        for address in addresses:
            kind = _kind(ipaddress.ip_address(address.split("%", 1)[0]))
            if kind is not None:
                raise AlertUrlRefused(f"{host} resolves to {address}, a {kind} address: alerts are not sent "
                                      "into private networks")
    return addresses


def alert_url_check(url: str) -> None:
    """Refuse a URL at save time: its form, and every address its host resolves to now."""
    try:
        alert_url_resolve(url)
    except AlertUrlUnreachable as error:
        raise AlertUrlRefused(str(error)) from None


@dataclass(frozen=True)
class Posted:
    """What the receiver answered: its status and how long it took (ms), the start of its body."""

    status: int
    duration_ms: int
    answer: str


def alert_post(*, url: str, body: bytes, headers: dict[str, str]) -> Posted:
    """POST `body` to `url` at an address checked now; no redirects, a short timeout.

    Raises AlertUrlRefused (a private address now), AlertUrlUnreachable (no address), or
    urllib3's HTTPError (connection refused, timeout, TLS): the caller decides about retries.
    """
    scheme, host, port = alert_url_shape(url)
    address = alert_url_resolve(url)[0]
    parts = urlsplit(url.strip())
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(total=TIMEOUT_SECONDS)
    if scheme == "https":
        # The connection goes to the checked address; TLS still names and verifies the host.
        pool = urllib3.HTTPSConnectionPool(address, port, timeout=timeout, retries=False, server_hostname=host,
                                           assert_hostname=host, cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    started = time.monotonic()
    try:
        response = pool.urlopen("POST", target, body=body, headers={**headers, "Host": parts.netloc.rpartition("@")[2]},
                                redirect=False, retries=False, preload_content=False)
        answer = response.read(RESPONSE_KEEP * 4, decode_content=True)
        response.release_conn()
    finally:
        pool.close()
    elapsed = round((time.monotonic() - started) * 1000)
    return Posted(status=response.status, duration_ms=elapsed,
                  answer=answer.decode("utf-8", "replace")[:RESPONSE_KEEP])
