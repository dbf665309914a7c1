"""The SSRF policy: which webhook URLs and addresses we agree to reach, judged with `ipaddress`.

It runs at registration (every resolved address) and again at send time, where the sender then
connects to an address that passed, so DNS cannot change the answer between check and connect.
Numeric host spellings (`2130706433`, `0x7f000001`, `0177.0.0.1`) are read as the addresses they
mean (inet_aton semantics); IPv6 forms that embed an IPv4 address are judged by that address.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

from pipeline.settings import Settings
from pipeline.webhooks.errors import InvalidWebhookUrl, UnsafeWebhookUrl

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) → addresses; raises OSError

MAX_URL_LENGTH = 2048
_NUMERIC_V4 = re.compile(r"[0-9][0-9a-fA-FxX.]*")  # what inet_aton might take as a number
_METADATA = {IPv4Address("169.254.169.254"), IPv6Address("fd00:ec2::254")}
_CGNAT = IPv4Network("100.64.0.0/10")
_NAT64 = IPv6Network("64:ff9b::/96")
_V4_COMPAT = IPv6Network("::/96")
_V4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")


@dataclass(frozen=True)
class UrlPolicy:
    allow_http: bool = False
    allow_loopback: bool = False  # test-only

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlPolicy:
        return cls(
            allow_http=settings.webhook_allow_http, allow_loopback=settings.webhook_allow_loopback
        )


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL: where to connect and what to ask for."""

    url: str
    scheme: str
    host: str  # a name (IDNA) or an IP literal without brackets
    port: int
    path: str  # path and query, never empty
    literal: IPAddress | None  # the host is a number: no DNS involved


def parse_url(url: str, policy: UrlPolicy) -> Target:
    """The URL's parts, or InvalidWebhookUrl / UnsafeWebhookUrl (scheme). No DNS here."""
    if len(url) > MAX_URL_LENGTH or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise InvalidWebhookUrl("the URL is too long or contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl("the URL cannot be parsed") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise InvalidWebhookUrl("the URL must start with https://")
    if scheme == "http" and not policy.allow_http:
        raise UnsafeWebhookUrl("plain http:// is not allowed: use https://")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("credentials in the URL are not allowed")
    if parts.fragment:
        raise InvalidWebhookUrl("a webhook URL has no #fragment")
    host = _ascii_host(parts.hostname or "")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    return Target(url, scheme, host, port or default_port, path, numeric_host(host))


def _ascii_host(host: str) -> str:
    if not host:
        raise InvalidWebhookUrl("the URL has no host")
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidWebhookUrl("the host name is not valid") from exc


def numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host spelling means (as the C library would read it), else None."""
    try:
        return ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_V4.fullmatch(host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def refusal(ip: IPAddress, policy: UrlPolicy) -> str | None:
    """Why `ip` must not be reached, or None when it may be."""
    embedded = embedded_v4(ip) if isinstance(ip, IPv6Address) else None
    if embedded is not None:
        reason = refusal(embedded, policy)
        return f"{reason} (IPv4 {embedded} inside IPv6)" if reason else None
    if ip.is_loopback:
        return None if policy.allow_loopback else "loopback"
    return _reason(ip)


def _reason(ip: IPAddress) -> str | None:
    checks: list[tuple[bool, str]] = [
        (ip.is_unspecified or ip in IPv4Network("0.0.0.0/8"), "unspecified"),
        (ip in _METADATA, "cloud metadata"),
        (ip.is_link_local, "link-local"),
        (isinstance(ip, IPv4Address) and ip in _CGNAT, "carrier-grade NAT"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (isinstance(ip, IPv6Address) and ip.is_site_local, "site-local"),  # fec0::/10, deprecated
        (not ip.is_global, "not globally routable"),
    ]
    return next((reason for hit, reason in checks if hit), None)


def embedded_v4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries: mapped, compatible, translated, NAT64, 6to4, Teredo."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's own address
    if ip in _NAT64 or ip in _V4_TRANSLATED or (ip in _V4_COMPAT and int(ip) > 1):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_addresses(host: str, addresses: Sequence[str], policy: UrlPolicy) -> list[IPAddress]:
    """Every address parsed and judged; one refused address refuses the host (no partial trust)."""
    if not addresses:
        raise InvalidWebhookUrl(f"{host} does not resolve")
    checked: list[IPAddress] = []
    for raw in addresses:
        ip = ip_address(raw.split("%", 1)[0])
        reason = refusal(ip, policy)
        if reason is not None:
            raise UnsafeWebhookUrl(f"{host} resolves to {ip}, a {reason} address")
        checked.append(ip)
    return checked


def resolve(target: Target, policy: UrlPolicy, resolver: Resolver) -> list[IPAddress]:
    """Resolve once and check every answer; the caller connects only to what this returns."""
    if target.literal is not None:
        return check_addresses(target.host, [str(target.literal)], policy)
    name = target.host.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: these names are loopback whatever a resolver says.
        return check_addresses(target.host, ["127.0.0.1"], policy)
    try:
        addresses = resolver(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        raise InvalidWebhookUrl(f"{target.host} does not resolve") from exc
    return check_addresses(target.host, addresses, policy)


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (getaddrinfo), each address once, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def validate_url(url: str, policy: UrlPolicy, resolver: Resolver) -> Target:
    """Registration-time check: parse, resolve, judge every address. Raises the two URL errors."""
    target = parse_url(url, policy)
    resolve(target, policy, resolver)
    return target
