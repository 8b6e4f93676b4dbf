"""QR/SMS survey link tokens, signed as a one-stop-shop system signs them (the partner recipe).

The surveys service documents its token format so that partner software holding the key can sign links
itself (``services/surveys/tokens.py``, README "The surveys service"): ``v1.<claims>.<tag>``, ``claims`` the
base64url (no padding) compact JSON ``{"d": dossier id, "u": unit code, "c": "qr"|"sms", "x": expiry in
Unix seconds, "i": instrument id?, "m": MaTTHC?}``, ``tag`` the first 16 bytes of HMAC-SHA256(key,
"v1." + claims), base64url without padding. The simulator is such a partner, so it follows the recipe
rather than importing the service (services stay independent); a unit test checks that the service
accepts what this module signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime

__all__ = ["sign_link"]

_TAG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_link(
    secret: bytes,
    *,
    dossier_id: str,
    unit_code: str,
    channel: str,
    expires_at: datetime,
    instrument_id: str | None = None,
    ma_tthc: str | None = None,
) -> str:
    """The link token of one dossier's survey."""
    body: dict[str, object] = {"d": dossier_id, "u": unit_code, "c": channel, "x": int(expires_at.timestamp())}
    if instrument_id is not None:
        body["i"] = instrument_id
    if ma_tthc is not None:
        body["m"] = ma_tthc
    signed = "v1." + _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    tag = hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest()[:_TAG_BYTES]
    return f"{signed}.{_b64(tag)}"
