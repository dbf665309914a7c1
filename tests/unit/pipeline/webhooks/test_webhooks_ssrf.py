"""The SSRF policy: every refused form from RELIABILITY.md and issue 5, numeric spellings, and the
public addresses that must stay reachable."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

import pytest

from pipeline.webhooks.errors import InvalidWebhookUrl, UnsafeWebhookUrl
from pipeline.webhooks.ssrf import (
    UrlPolicy,
    check_addresses,
    embedded_v4,
    numeric_host,
    parse_url,
    refusal,
    resolve,
    system_resolver,
    validate_url,
)

STRICT = UrlPolicy()
PUBLIC = "93.184.216.34"


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"no DNS lookup expected for {host}")


def dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolver(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"NXDOMAIN {host}")
        return table[host]

    return resolver


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://127.1.2.3/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),  # decimal
        ("https://0x7f000001/hook", "loopback"),  # hexadecimal
        ("https://0177.0.0.1/hook", "loopback"),  # octal
        ("https://127.1/hook", "loopback"),  # short form
        ("https://0x7f.0.0.1/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[::ffff:169.254.169.254]/hook", "cloud metadata"),
        ("https://[::ffff:a9fe:a9fe]/hook", "cloud metadata"),
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://[fd00:ec2::254]/hook", "cloud metadata"),
        ("https://[fec0::1]/hook", "site-local"),
        ("https://169.254.1.1/hook", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://10.0.0.8/hook", "private"),
        ("https://172.16.5.4/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://[fc00::1]/hook", "private"),
        ("https://100.64.0.1/hook", "carrier-grade NAT"),
        ("https://100.127.255.254/hook", "carrier-grade NAT"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://[ff02::1]/hook", "multicast"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://0/hook", "unspecified"),
        ("https://[::]/hook", "unspecified"),
        ("https://240.0.0.1/hook", "reserved"),
        ("https://255.255.255.255/hook", "reserved"),
        ("https://198.18.0.1/hook", "private"),  # benchmarking range
        ("https://[::127.0.0.1]/hook", "loopback"),  # IPv4-compatible
        ("https://[64:ff9b::a00:1]/hook", "private"),  # NAT64 of 10.0.0.1
        ("https://[2002:7f00:1::]/hook", "loopback"),  # 6to4 of 127.0.0.1
        (
            "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
            "loopback",
        ),  # Teredo, client 127.0.0.1
        ("https://localhost/hook", "loopback"),
        ("https://api.localhost/hook", "loopback"),
        ("https://localhost./hook", "loopback"),
    ],
)
def test_refused_forms(url: str, reason: str) -> None:
    with pytest.raises(UnsafeWebhookUrl) as caught:
        validate_url(url, STRICT, no_dns)
    assert reason in caught.value.message
    assert caught.value.code == "unsafe_webhook_url"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("3232235777", "192.168.1.1"),
        ("::ffff:169.254.169.254", "::ffff:a9fe:a9fe"),
        ("example.com", None),
        ("1e100.net", None),
        ("deadbeef", None),
        ("0x7f000001.example.com", None),
    ],
)
def test_numeric_host_spellings_mean_what_the_c_library_reads(
    host: str, expected: str | None
) -> None:
    parsed = numeric_host(host)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    "address",
    [PUBLIC, "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ip_address(address), STRICT) is None


def test_public_literal_url_is_accepted_without_dns() -> None:
    target = validate_url(f"https://{PUBLIC}:8443/hooks?x=1", STRICT, no_dns)
    assert (target.host, target.port, target.path) == (PUBLIC, 8443, "/hooks?x=1")


def test_every_resolved_address_is_judged() -> None:
    resolver = dns({"mixed.example": [PUBLIC, "10.1.2.3"], "good.example": [PUBLIC, "8.8.8.8"]})
    with pytest.raises(UnsafeWebhookUrl, match=r"10\.1\.2\.3"):
        validate_url("https://mixed.example/hook", STRICT, resolver)
    target = validate_url("https://good.example/hook", STRICT, resolver)
    assert [str(a) for a in resolve(target, STRICT, resolver)] == [PUBLIC, "8.8.8.8"]


def test_a_name_that_resolves_to_a_mapped_metadata_address_is_refused() -> None:
    resolver = dns({"sneaky.example": ["::ffff:169.254.169.254"]})
    with pytest.raises(UnsafeWebhookUrl, match="cloud metadata"):
        validate_url("https://sneaky.example/hook", STRICT, resolver)


def test_an_unresolvable_name_is_invalid() -> None:
    with pytest.raises(InvalidWebhookUrl, match="does not resolve"):
        validate_url("https://nowhere.example/hook", STRICT, dns({}))


def test_what_the_system_resolver_says_of_localhost_is_refused() -> None:
    addresses = system_resolver("localhost", 443)
    assert addresses
    with pytest.raises(UnsafeWebhookUrl, match="loopback"):
        check_addresses("localhost", addresses, STRICT)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://hooks.example/x", UnsafeWebhookUrl),  # https only by default
        ("ftp://hooks.example/x", InvalidWebhookUrl),
        ("file:///etc/passwd", InvalidWebhookUrl),
        ("https://user:pw@hooks.example/x", InvalidWebhookUrl),
        ("https:///no-host", InvalidWebhookUrl),
        ("https://hooks.example:99999/x", InvalidWebhookUrl),
        ("https://hooks.example/x#frag", InvalidWebhookUrl),
        ("https://hooks.example/a b", InvalidWebhookUrl),
        ("https://hooks.example/\r\nX-Injected: 1", InvalidWebhookUrl),
        ("https://hooks.example/" + "a" * 2100, InvalidWebhookUrl),
        ("not a url", InvalidWebhookUrl),
    ],
)
def test_malformed_or_unsupported_urls(url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_url(url, STRICT)


def test_loopback_is_reachable_only_with_the_test_setting() -> None:
    allowing = UrlPolicy(allow_http=True, allow_loopback=True)
    assert validate_url("http://127.0.0.1:9/hook", allowing, no_dns).port == 9
    assert validate_url("http://localhost:9/hook", allowing, no_dns).host == "localhost"
    # The test setting opens loopback only: private and metadata stay refused.
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://[::ffff:10.0.0.1]/"):
        with pytest.raises(UnsafeWebhookUrl):
            validate_url(url, allowing, no_dns)


def test_embedded_v4_forms() -> None:
    assert embedded_v4(ip_address("::ffff:1.2.3.4")) == IPv4Address("1.2.3.4")  # type: ignore[arg-type]
    assert embedded_v4(ip_address("2002:0102:0304::1")) == IPv4Address("1.2.3.4")  # type: ignore[arg-type]
    assert embedded_v4(ip_address("64:ff9b::102:304")) == IPv4Address("1.2.3.4")  # type: ignore[arg-type]
    assert embedded_v4(ip_address("2606:4700::1111")) is None  # type: ignore[arg-type]


def test_internationalised_names_are_encoded() -> None:
    target = parse_url("https://bücher.example/hook", STRICT)
    assert target.host == "xn--bcher-kva.example"
