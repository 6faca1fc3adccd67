"""ACME Renewal Information (RFC 9773): the CA's suggested renewal window.

`ari_cert_id` is a certificate's ARI identifier (base64url of the Authority Key
Identifier, ".", base64url of the DER serial), used both in the renewalInfo URL and
as a renewal order's `replaces`. acme 5.8 computes it (`_renewal_info_path_component`)
but has no `replaces` in its NewOrder; `NewOrder` here adds it.
"""

from __future__ import annotations

import datetime
from typing import NamedTuple

import josepy as jose
from acme import client as acme_client
from acme import messages
from cryptography import x509

# RFC 9773 4.3: clamp Retry-After to [1 minute, 1 day]; without a usable one, check again
# in a few hours (acme's renewal_time uses 6 h, as do other clients).
MIN_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 24 * 3600.0
DEFAULT_RETRY_AFTER = 6 * 3600.0


class RenewalWindow(NamedTuple):
    """The CA's suggestedWindow (aware UTC datetimes) and its Retry-After in seconds
    (None when the CA sent none)."""

    start: datetime.datetime
    end: datetime.datetime
    retry_after: float | None


class NewOrder(messages.NewOrder):
    """newOrder with RFC 9773's `replaces`: the ARI id of the certificate being renewed."""

    replaces: str = jose.field("replaces", omitempty=True)


def ari_cert_id(cert_pem: str | bytes) -> str:
    """The ARI identifier of the (leaf) certificate in `cert_pem`.

    Raises ValueError when the certificate has no Authority Key Identifier (no ARI then)."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    cert = x509.load_pem_x509_certificate(data)
    try:
        return acme_client._renewal_info_path_component(cert)  # acme's own RFC 9773 encoding
    except x509.ExtensionNotFound:
        raise ValueError("the certificate has no Authority Key Identifier, so no ARI identifier") from None


def clamp_retry_after(seconds: float | None) -> float:
    """Seconds until the next renewalInfo check, within RFC 9773's sane bounds."""
    if seconds is None:
        return DEFAULT_RETRY_AFTER
    return min(max(float(seconds), MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def parse_renewal_info(body: dict) -> tuple[datetime.datetime, datetime.datetime]:
    """(start, end) of a renewalInfo body; ValueError if it is not a usable window."""
    try:
        window = messages.RenewalInfo.from_json(body).suggested_window
        start, end = window.start, window.end
    except (jose.DeserializationError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"malformed renewalInfo: {exc}") from None
    if start is None or end is None:
        raise ValueError("renewalInfo without a suggestedWindow start and end")
    start, end = _utc(start), _utc(end)
    if end <= start:  # RFC 9773 4.2: invalid, treat as no answer
        raise ValueError(f"renewalInfo window ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M})")
    return start, end


def _utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)
