"""The expiry of a TLS peer certificate, read from its DER bytes (no crypto library needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from sla.errors import SlamonError

_SEQUENCE = 0x30
_EXPLICIT_VERSION = 0xA0
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
# serialNumber, signature and issuer lie between the version and the validity.
_FIELDS_BEFORE_VALIDITY = 3


class CertificateError(SlamonError):
    """A peer certificate could not be read."""


def certificate_expires_at(der: bytes) -> datetime:
    """The `notAfter` instant of an X.509 certificate in DER form (RFC 5280 §4.1.2.5)."""
    _, cert_start, _ = _element(der, 0, _SEQUENCE)
    _, tbs_start, tbs_end = _element(der, cert_start, _SEQUENCE)
    offset = tbs_start
    if der[offset] == _EXPLICIT_VERSION:
        offset = _element(der, offset)[2]
    for _ in range(_FIELDS_BEFORE_VALIDITY):
        offset = _element(der, offset)[2]
    _, validity_start, validity_end = _element(der, offset, _SEQUENCE)
    not_after_offset = _element(der, validity_start)[2]
    tag, start, end = _element(der, not_after_offset)
    if end > min(validity_end, tbs_end):
        raise CertificateError("certificate validity runs past its sequence")
    return _instant(tag, der[start:end].decode("ascii"))


def _element(der: bytes, offset: int, expected_tag: int | None = None) -> tuple[int, int, int]:
    """The tag, content start and content end of the DER element at `offset`."""
    if offset + 2 > len(der):
        raise CertificateError(f"certificate truncated at byte {offset}")
    tag, length = der[offset], der[offset + 1]
    start = offset + 2
    if length & 0x80:
        width = length & 0x7F
        length = int.from_bytes(der[start : start + width], "big")
        start += width
    end = start + length
    if end > len(der) or (expected_tag is not None and tag != expected_tag):
        raise CertificateError(f"not a DER X.509 certificate (byte {offset})")
    return tag, start, end


def _instant(tag: int, text: str) -> datetime:
    """A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as a UTC datetime."""
    if tag == _UTC_TIME:
        # RFC 5280: two-digit years 50..99 are 19xx, 00..49 are 20xx.
        century = "19" if int(text[:2]) >= 50 else "20"
        text = century + text
    elif tag != _GENERALIZED_TIME:
        raise CertificateError(f"unexpected ASN.1 tag {tag:#x} for a certificate time")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
