"""The indicator model: normalisation per type, type guessing, TLP parsing, expiry and decay."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from cloudsoc.errors import ParseError
from cloudsoc.intel.expiry import ExpiryPolicy
from cloudsoc.intel.indicator import TLP, Indicator, IndicatorType, classify_ip, guess, normalise

T = IndicatorType


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (T.IPV4, " 192.0.2.1 ", "192.0.2.1"),
        (T.IPV6, "2001:0DB8:0000::0001", "2001:db8::1"),
        (T.CIDR, "10.1.2.3/8", "10.0.0.0/8"),
        (T.CIDR, "2001:db8::1/32", "2001:db8::/32"),
        (T.DOMAIN, "Evil.Example.COM.", "evil.example.com"),
        (T.DOMAIN, "Bücher.de", "xn--bcher-kva.de"),
        (T.DOMAIN, "_dmarc.example.com", "_dmarc.example.com"),
        (T.URL, "HTTP://Evil.COM:80", "http://evil.com/"),
        (T.URL, "https://evil.com:443/a/B?x=1#frag", "https://evil.com/a/B?x=1"),
        (T.URL, "https://evil.com:8443/", "https://evil.com:8443/"),
        (T.URL, "http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
        (T.URL, "http://user:pw@1.2.3.4/x", "http://user:pw@1.2.3.4/x"),
        (T.MD5, "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
        (T.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (
            T.SHA256,
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (T.EMAIL, "Bad.Guy@Evil.COM", "bad.guy@evil.com"),
        (T.JA3, "E7D705A3286E19EA42F587B344EE6865", "e7d705a3286e19ea42f587b344ee6865"),
        (T.JA4, "T13D1516H2_8DAAF6152771_B186095E22B6", "t13d1516h2_8daaf6152771_b186095e22b6"),
    ],
)
def test_normalise(kind: IndicatorType, raw: str, expected: str) -> None:
    assert normalise(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        (T.IPV4, "300.1.1.1", "ipv4 '300.1.1.1'"),
        (T.IPV4, "01.2.3.4", "ipv4"),
        (T.IPV6, "1.2.3.4", "ipv6"),
        (T.CIDR, "10.0.0.0/33", "cidr"),
        (T.DOMAIN, "bad domain.com", "label 'bad domain'"),
        (T.DOMAIN, "-x.com", "label '-x'"),
        (T.URL, "evil.com/path", "needs a scheme and a host"),
        (T.URL, "http://evil.com:99999/", "url"),
        (T.MD5, "abc", "needs 32 hex digits"),
        (T.SHA256, "z" * 64, "needs 64 hex digits"),
        (T.EMAIL, "no-at-sign", "not an e-mail address"),
        (T.JA4, "t13d", "not a JA4 fingerprint"),
        (T.DOMAIN, "  ", "empty value"),
    ],
)
def test_normalise_rejects_with_a_clear_message(kind: IndicatorType, raw: str, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        normalise(kind, raw)


def test_classify_ip_and_guess() -> None:
    assert classify_ip("10.0.0.0/15") == (T.CIDR, "10.0.0.0/15")
    assert classify_ip("192.0.2.7/32") == (T.IPV4, "192.0.2.7")
    assert classify_ip("2001:db8::1/128") == (T.IPV6, "2001:db8::1")
    assert guess("192.0.2.1") == (T.IPV4, "192.0.2.1")
    assert guess("1password.com") == (T.DOMAIN, "1password.com")
    assert guess("EVIL.com") == (T.DOMAIN, "evil.com")
    assert guess("http://evil.com") == (T.URL, "http://evil.com/")
    assert guess("a@b.com") == (T.EMAIL, "a@b.com")
    assert guess("d41d8cd98f00b204e9800998ecf8427e") == (T.MD5, "d41d8cd98f00b204e9800998ecf8427e")
    assert guess("2001:db8::/32") == (T.CIDR, "2001:db8::/32")
    for unclear in ("localhost", "evil.com/path", "C:\\Windows", "", "12:34:56"):
        assert guess(unclear) is None


def test_tlp_and_confidence_bounds() -> None:
    assert TLP.parse("TLP:WHITE") is TLP.CLEAR
    assert TLP.parse("tlp:amber+strict") is TLP.AMBER_STRICT
    assert TLP.parse("pap:red") is None
    with pytest.raises(ParseError, match="confidence 101"):
        Indicator(type=T.IPV4, value="192.0.2.1", source="s", confidence=101)


def test_expiry_by_type_and_valid_until_wins_when_earlier() -> None:
    policy = ExpiryPolicy()
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    ip = Indicator(type=T.IPV4, value="192.0.2.1", source="s")
    digest = Indicator(type=T.SHA256, value="e" * 64, source="s")
    assert policy.expires(ip, seen) < policy.expires(digest, seen)  # an address ages faster than a hash
    soon = Indicator(type=T.SHA256, value="e" * 64, source="s", valid_until=seen + timedelta(days=3))
    assert policy.expires(soon, seen) == seen + timedelta(days=3)
    late = Indicator(type=T.IPV4, value="192.0.2.1", source="s", valid_until=seen + timedelta(days=3000))
    assert policy.expires(late, seen) == seen + timedelta(days=30)
    end = policy.expires(ip, seen)
    assert policy.confidence_at(80, seen, end, seen) == 80
    assert policy.confidence_at(80, seen, end, seen + (end - seen) / 2) == 60
    assert policy.confidence_at(80, seen, end, end) == 0
