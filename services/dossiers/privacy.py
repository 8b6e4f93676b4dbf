"""The applicant pseudonym (``applicant_ref``): how a citizen is named in chiso without being named.

No personal data crosses chiso's topics (``contracts.dossiers``): the applicant (chủ hồ sơ) is a keyed
pseudonym. It is made in two steps so the raw identifier never leaves the partner and the brute-forceable
hash never leaves the dossiers service:

1. the partner (one-stop-shop software, or the DVCQG import of this package) sends
   :func:`applicant_digest` — SHA-256 of the normalised identifier (MaDoiTuong / số định danh, or the
   name when there is no identifier). Every partner computes it the same way, so one applicant has one
   digest across systems. A plain hash of a 12-digit citizen identity number (CCCD) is brute-forced in
   minutes, so the digest is *not* a pseudonym by itself;
2. the intake re-keys every inbound digest with :class:`Pseudonymizer` (HMAC-SHA256 under a secret only
   the dossiers service holds) before anything is stored or published. Without the secret the canonical
   pseudonym cannot be linked back to an identity number, not even by enumerating all of them.

Both steps output 64 lowercase hex characters, the shape the contract's ``applicant_ref`` accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

__all__ = ["MIN_SECRET_BYTES", "Pseudonymizer", "applicant_digest", "normalize_identifier"]

#: a shorter HMAC key is guessable faster than the identity numbers it protects
MIN_SECRET_BYTES = 16

_DIGEST = re.compile(r"[0-9a-f]{64}")


def normalize_identifier(raw: str) -> str:
    """The canonical spelling of an applicant identifier, so every partner hashes the same bytes.

    Strips, removes all inner whitespace and upper-cases, after Unicode NFC: identity numbers are typed
    with spaces ("001 203 004 567") and names arrive both precomposed and decomposed (Vietnamese
    diacritics), which must not give one applicant two pseudonyms.
    """
    return "".join(unicodedata.normalize("NFC", raw).split()).upper()


def applicant_digest(raw_identifier: str) -> str:
    """SHA-256 (lowercase hex) of the normalised identifier: what partners send as ``applicant_ref``.

    Raises ``ValueError`` for an identifier that is empty once normalised: hashing nothing would give every
    anonymous dossier the same applicant.
    """
    normalized = normalize_identifier(raw_identifier)
    if not normalized:
        msg = "empty applicant identifier"
        raise ValueError(msg)
    return hashlib.sha256(normalized.encode()).hexdigest()


class Pseudonymizer:
    """Re-keys partner digests into the canonical pseudonym with the dossiers service's secret."""

    __slots__ = ("_keyed", "_secret")

    def __init__(self, secret: bytes) -> None:
        """Keep the HMAC key; refuse one under :data:`MIN_SECRET_BYTES` (it would be guessable)."""
        if len(secret) < MIN_SECRET_BYTES:
            msg = f"the pseudonym secret must be at least {MIN_SECRET_BYTES} bytes, got {len(secret)}"
            raise ValueError(msg)
        self._secret = bytes(secret)
        # the key's inner and outer pads hashed once; each re-keying copies this state
        self._keyed = hmac.new(self._secret, digestmod=hashlib.sha256)

    def rekey(self, digest: str) -> str:
        """HMAC-SHA256(secret, digest), lowercase hex: the canonical ``applicant_ref``.

        Only a digest (64 lowercase hex characters) is accepted: re-keying a raw identity number or a name
        by mistake would still yield a valid-looking pseudonym and hide the partner's bug.
        """
        if not _DIGEST.fullmatch(digest):
            msg = "applicant_ref must be a SHA-256 digest (64 lowercase hex characters)"
            raise ValueError(msg)
        # a copy of the keyed state, not the one-shot ``hmac.digest``: that one re-hashes the key each time
        # and releases the GIL around OpenSSL's call, which hands the interpreter to the import's reader
        # thread for up to a switch interval (5 ms) on every fact; the copy is faster and keeps the GIL
        # (hashlib releases it only for inputs of 2 KiB or more)
        mac = self._keyed.copy()
        mac.update(digest.encode("ascii"))
        return mac.hexdigest()

    def __repr__(self) -> str:
        """Never show the secret (reprs end up in logs and tracebacks)."""
        return "Pseudonymizer(secret=***)"
