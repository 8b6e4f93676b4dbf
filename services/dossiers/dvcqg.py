"""DVCQG "đồng bộ hồ sơ" exports → inbound facts, for the bulk backfill ``chiso dossiers import FILE``.

A province's one-stop-shop software already syncs every dossier to the national portal (Cổng DVCQG) with
the "đồng bộ hồ sơ" body (DOMAIN §2.3). An export of those bodies is the cheapest way to load a commune's
history, so this module turns one body into the dossier's history: a time-ordered list of
:class:`~services.dossiers.inbound.InboundFact` whose payloads are the inbound contract models of
:mod:`contracts.dossiers`. It is pure (no I/O but :func:`iter_records`, no clock); storing, resuming and the
command itself live elsewhere.

The body is a *snapshot* (current status plus the dates of the stages reached), not a log, so the mapping
reconstructs the facts the snapshot proves:

=========================  =================================================================================
fact                       emitted when
=========================  =================================================================================
``DossierSubmitted``       KenhThucHien = 2 (trực tuyến) and ``NgayNopHoSo`` is present
``DossierReceived``        ``NgayTiepNhan`` present and TrangThaiHoSo ∉ {1, 3} (Mẫu 01; the clock starts)
``DossierRefused``         TrangThaiHoSo = 3 (Mẫu 03; never a received dossier)
``SupplementRequested``    every ``DanhSachHoSoBoSung[]`` (Mẫu 02); stage ``processing`` if ``NgayBoSung`` is
                           after ``NgayTiepNhan``, else ``reception``
``SupplementReceived``     every ``DanhSachHoSoBoSung[]`` with ``NgayTiepNhanBoSung``
``FeePaid``                ``DanhSachLePhi`` sums to more than 0 and the record says paid:
                           DuocThanhToanTrucTuyen 1 (DVCQG) / 2 (local gateway), or ``NgayThanhToan`` present
``ResultIssued``           TrangThaiHoSo ∈ {9, 10} and ``NgayKetThucXuLy`` present (required for 9)
``ResultDelivered``        TrangThaiHoSo = 10 (``NgayTra`` and ``HinhThuc`` required)
``DossierWithdrawn``       TrangThaiHoSo = 7
``ProcessingStopped``      TrangThaiHoSo = 8
=========================  =================================================================================

The status is authoritative: dates of stages the status has not reached (e.g. ``NgayTra`` on a status 9
dossier, which some exporters fill with the finish date) are ignored, never turned into facts.

Fields read (DVCQG body, DOMAIN §2.3 and the Decision 766 flags):

=============================================  =====================================================================
field                                          use
=============================================  =====================================================================
MaHoSo                                         ``dossier_id``; prefix of every ``event_id`` (required)
MaTTHC                                         ``ma_tthc``, shape ``d.dddddd`` (required)
DonViXuLy                                      ``agency_code`` — must be the DVCQG agency code (MADONVI, e.g.
                                               ``000.00.01.H26``), not the agency's name (required)
TrangThaiHoSo                                  status 1-10 (DOMAIN §2.2), decides which facts exist (required)
KenhThucHien                                   ``channel``: 1 trực tiếp, 2 trực tuyến, 3 bưu chính; missing = 1
LoaiDoiTuong                                   ``applicant_type``: 1 cá nhân, 2 tổ chức
MaDoiTuong, else ChuHoSo                       ``applicant_ref`` = :func:`~services.dossiers.privacy.applicant_digest`
                                               of it; the intake re-keys it. Never copied anywhere
NgayTiepNhan, NgayHenTra                       ``received_at``, ``due_at`` (``due_at < received_at`` is an error)
ThoiGianGiaiQuyet + DonViTinh                  ``statutory_time``; also ``due_at`` through ``due_at_of`` when
                                               NgayHenTra is missing
TaiLieuNop[]                                   ``components`` (items with IsDeleted = 1 skipped): MaThanhPhanHoSo,
                                               DuocSoHoa (missing: a file link DuongDanTaiTepTin is present),
                                               DuocLayTuKhoDMQG
HoSoCoThanhPhanSoHoa                           ``reused_digital_data`` of every component (a dossier-level flag)
TaiKhoanDuocXacThucVoiVNeID                    ``vneid_authenticated``
DanhSachHoSoBoSung[]                           HoSoBoSungId, NgayBoSung, NoiDungBoSung, NgayTiepNhanBoSung,
                                               NgayHenTraTruoc, NgayHenTraMoi
DanhSachLePhi[], DuocThanhToanTrucTuyen        ``FeePaid`` (TenPhiLePhi, MaPhiLePhi, HinhThucThu, Gia, LoaiPhiLePhi)
NgayKetThucXuLy, DanhSachGiayToKetQua[]        ``ResultIssued``; a document is ``electronic`` iff MaKetQua and
                                               DuongDanTepTinKetQua are both set
NgayTra, HinhThuc                              ``ResultDelivered``; HinhThuc 0 trực tiếp, 1 bưu chính (OpenCPS codes),
                                               2 điện tử (chiso), or those words
=============================================  =====================================================================

Never read, so never output: ChuHoSo, MaDoiTuong (only hashed), Email, SoDienThoai, TrichYeuHoSo,
GhiChu, ThongTinTra, TenTTHC, TenLinhVuc, MaLinhVuc, TaiLieuNop[].TenTepDinhKem/DuongDanTaiTepTin (only
tested for presence), and the officials' names NguoiYeuCauBoSung / NguoiTiepNhanBoSung (the contract's
actors are opaque account ids, so ``actor_id`` stays null). Free text that *is* copied (LyDo,
NoiDungBoSung, TenPhiLePhi, TenGiayTo) is refused when it contains the applicant's name, identifier, phone
or e-mail. TrangThaiBoSung is not read (its codes are not documented; NgayTiepNhanBoSung says whether the
supplement came back).

Extension fields (not in the DVCQG body; exports made for chiso may add them, all optional):

===============================================  ===================================================================
field                                            meaning
===============================================  ===================================================================
MaDVHC                                           5-digit commune code (mã ĐVHC) the dossier belongs to; else the
                                                 command's ``--unit`` default (``default_unit``)
PhienBanTTHC                                     ``procedure_version`` (e.g. the publishing decision); else the
                                                 literal ``"unspecified"`` (:data:`UNSPECIFIED_VERSION`)
NgayNopHoSo                                      submission time of an online dossier (also used by TD and F766 3.2)
NopTuCongDVCQG                                   1 = submitted through the national portal (``submitted_via_dvcqg``,
                                                 766 3.2); missing = 0
NgayTuChoi                                       refusal time (status 3); else NgayKetThucXuLy, else NgayTiepNhan
NgayRutHoSo                                      withdrawal time (status 7); else NgayKetThucXuLy
NgayDungXuLy                                     stop time (status 8); else NgayKetThucXuLy
LyDo                                             reason of a refusal or stop (no personal data); else
                                                 :data:`REASON_NOT_GIVEN`
NgayThanhToan                                    payment time; without it an online payment (DuocThanhToanTrucTuyen
                                                 1/2) is dated NgayNopHoSo, else NgayTiepNhan — 766 3.6 counts
                                                 *whether* a dossier was paid online, not when
DanhSachHoSoBoSung[].ThoiHanBoSung               the applicant's deadline to supplement (``citizen_deadline_at``)
DanhSachGiayToKetQua[].DuocKySo                  1 = the electronic result is digitally signed; missing = 0
DanhSachGiayToKetQua[].DaDongBoKhoDMQG           1 = the result was synced to the applicant's store on DVCQG (766 4.4);
                                                 missing = 0
===============================================  ===================================================================

Values: dates are ``yyyyMMddHHmmss`` in local time (Asia/Ho_Chi_Minh, +07:00, no DST) or ISO 8601 (a naive
one is local time); codes and flags are JSON numbers or their digits as text (CSV); an empty string is a
missing value (OpenCPS sends ``""`` for absent fields). DonViTinh accepts the CSDL TTHC words ("Giờ",
"Ngày làm việc", "Ngày", "Tháng"; case, spacing and diacritics ignored) or chiso's unit names; no numeric
DonViTinh codes are documented in any source we found, so numbers are refused.

``statutory_time`` is never derived from NgayHenTra: it is a property of the procedure version, and a
due date computed back from one dossier would carry that dossier's calendar artefacts (cut-off, lunch
break, holidays) into the 766 2.2 averages. A received dossier without ThoiGianGiaiQuyet + DonViTinh is a
:class:`RecordError`.

Every problem is a :class:`RecordError` naming the field, its value and the rule — never another exception
— so the command can report the record and move on.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import ValidationError

from contracts.base import EventPayload
from contracts.dossiers import (
    ApplicantType,
    Channel,
    DeliveryChannel,
    DossierReceived,
    DossierRefused,
    DossierSubmitted,
    DossierWithdrawn,
    FeePaid,
    OnlinePaymentPlatform,
    ProcessingStopped,
    ResultDelivered,
    ResultIssued,
    SupplementReceived,
    SupplementRequested,
    SupplementStage,
    TimeUnit,
)
from services.dossiers.inbound import InboundFact
from services.dossiers.privacy import normalize_identifier

__all__ = [
    "REASON_NOT_GIVEN",
    "UNSPECIFIED_VERSION",
    "VN_TZ",
    "DueAtOf",
    "RecordError",
    "count_records",
    "iter_records",
    "map_sync_body",
]

#: Asia/Ho_Chi_Minh has been UTC+07:00 without DST since 1975: a fixed offset is exact and much faster
VN_TZ: Final = timezone(timedelta(hours=7), "+07:00")
#: ``procedure_version`` when the export has no PhienBanTTHC: says "not known" instead of guessing
UNSPECIFIED_VERSION: Final = "unspecified"
#: ``reason`` of a refusal or stop when the export has no LyDo (the DVCQG body has no reason field)
REASON_NOT_GIVEN: Final = "Không có lý do trong dữ liệu xuất DVCQG"

#: computes a due date: (received_at, ThoiGianGiaiQuyet, unit) -> due_at, unit a :class:`TimeUnit` value
DueAtOf = Callable[[datetime, float, str], datetime]


class RecordError(Exception):
    """One field of an export record breaks one rule; the record is skipped and reported, never guessed.

    ``str()`` is ``"field: value: rule"``. Values that may hold personal data are replaced by
    ``"<redacted>"`` before they get here, because these messages end up in logs and reports.
    """

    def __init__(self, field: str, value: object, rule: str) -> None:
        """Keep the three parts separately (the command may tabulate them) and as the exception args."""
        super().__init__(field, value, rule)
        self.field = field
        self.value = value
        self.rule = rule

    def __str__(self) -> str:
        """``field: value: rule``, the value shortened so one bad cell cannot flood a report."""
        try:
            shown = repr(self.value)
        except ValueError:  # an int beyond sys.get_int_max_str_digits()
            shown = f"<{type(self.value).__name__}>"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"{self.field}: {shown}: {self.rule}"


# --- value readers -------------------------------------------------------------------------------------

_REDACTED: Final = "<redacted>"
_DATE_RULE: Final = "not a date (expected yyyyMMddHHmmss in local time, or ISO 8601)"
# a year outside this range is a typo (0026, 20260); it also keeps +07:00 arithmetic clear of datetime.min/max
_MIN_YEAR, _MAX_YEAR = 1990, 2100
_UNIT_CODE = re.compile(r"[0-9]{5}|[0-9]{3}|[0-9]{2}")
_MA_TTHC = re.compile(r"[0-9]\.[0-9]{6}")
# MADONVI codes are dotted tokens (000.00.01.H26); anything with spaces is an agency *name*
_AGENCY_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,199}")
_MAX_ID = 200
_BIG_INT = 10**40
# personal values shorter than this are not searched for in free text (too many false hits, e.g. "An")
_MIN_PII_LENGTH = 5

_STATUSES = range(1, 11)
_CHANNELS: Final = {1: Channel.DIRECT, 2: Channel.ONLINE, 3: Channel.POSTAL}
_APPLICANT_TYPES: Final = {1: ApplicantType.INDIVIDUAL, 2: ApplicantType.ORGANISATION}
_PLATFORMS: Final = {1: OnlinePaymentPlatform.DVCQG, 2: OnlinePaymentPlatform.LOCAL_GATEWAY}
_DELIVERY_CODES: Final = {0: DeliveryChannel.IN_PERSON, 1: DeliveryChannel.POSTAL, 2: DeliveryChannel.ELECTRONIC}


def _fold(text: str) -> str:
    """Lower-case, diacritics and extra spaces removed: "Ngày  làm việc" and "ngay lam viec" compare equal."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


_UNIT_WORDS: Final = {
    "gio": TimeUnit.WORKING_HOURS,
    "gio lam viec": TimeUnit.WORKING_HOURS,
    "ngay lam viec": TimeUnit.WORKING_DAYS,
    "ngay": TimeUnit.CALENDAR_DAYS,
    "ngay theo lich": TimeUnit.CALENDAR_DAYS,
    "thang": TimeUnit.MONTHS,
    **{unit.value: unit for unit in TimeUnit},
}
_DELIVERY_WORDS: Final = {
    "truc tiep": DeliveryChannel.IN_PERSON,
    "buu chinh": DeliveryChannel.POSTAL,
    "buu chinh cong ich": DeliveryChannel.POSTAL,
    "buu dien": DeliveryChannel.POSTAL,
    "dien tu": DeliveryChannel.ELECTRONIC,
    "truc tuyen": DeliveryChannel.ELECTRONIC,
    **{channel.value: channel for channel in DeliveryChannel},
}
# exact spellings seen once are looked up without folding again (a bounded set: a few per export)
_unit_cache: dict[str, TimeUnit] = {}
_delivery_cache: dict[str, DeliveryChannel] = {}


def _present(record: Mapping[Any, Any]) -> dict[Any, Any]:
    """The fields that have a value: null and empty strings (CSV cells, OpenCPS "") are missing values.

    Done once per object, so every later read is a plain ``dict.get``.
    """
    return {key: value for key, value in record.items() if value is not None and value != ""}


def _code(value: Any, field: str) -> int:
    """An integer code given as a JSON number or as its digits in text (CSV); bools are not codes."""
    if value.__class__ is int:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            return int(text)
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    raise RecordError(field, value, "must be an integer code")


def _flag(value: Any, field: str) -> bool:
    """A 0/1 flag of the DVCQG body (also true/false); missing is 0."""
    if value is None:
        return False
    if value is True or value is False:
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true"):
            return True
        if text in ("0", "false", ""):
            return False
    elif value.__class__ is int or isinstance(value, float):
        if value == 1:
            return True
        if value == 0:
            return False
    raise RecordError(field, value, "must be a flag 0 or 1")


def _time(value: Any, field: str) -> datetime:
    """A DVCQG time (``yyyyMMddHHmmss``, local) or ISO 8601 (naive = local), as an aware datetime."""
    if value.__class__ is int:
        text = _int_text(value, field)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise RecordError(field, value, _DATE_RULE)
    if len(text) == 14 and text.isascii() and text.isdigit():
        # the ISO basic form of the same digits: fromisoformat is C code, ~4x faster than int() slicing
        text = f"{text[:8]}T{text[8:]}+07:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(field, value, _DATE_RULE) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VN_TZ)
    if not _MIN_YEAR <= parsed.year < _MAX_YEAR:
        raise RecordError(field, value, f"year outside {_MIN_YEAR}-{_MAX_YEAR - 1}")
    return parsed


def _opt_time(value: Any, field: str) -> datetime | None:
    return None if value is None else _time(value, field)


def _int_text(value: int, field: str) -> str:
    """The digits of a JSON number; absurdly long ones are refused (``str()`` itself refuses > 4300 digits)."""
    if -_BIG_INT < value < _BIG_INT:
        return str(value)
    raise RecordError(field, f"<{len(hex(value))}-digit hex number>", "number too large")


def _id(value: Any, field: str) -> str:
    """An opaque id (text, or a JSON number for numeric ids), 1-200 characters after stripping."""
    if value.__class__ is int:
        return _int_text(value, field)
    if isinstance(value, str):
        text = value.strip()
        if 0 < len(text) <= _MAX_ID:
            return text
        raise RecordError(field, value, f"must be 1-{_MAX_ID} characters")
    raise RecordError(field, value, "must be text")


def _text(value: Any, field: str, pii: tuple[str, ...]) -> str:
    """Free text copied into a payload: non-blank, and never carrying the applicant's personal data."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(field, value, "must be non-empty text")
    text = value.strip()
    if pii:
        folded = text.casefold()
        for secret in pii:
            if secret in folded:
                raise RecordError(field, _REDACTED, "contains the applicant's name, identifier, phone or e-mail")
    return text


def _opt_str(value: Any, field: str) -> str | None:
    """An optional code kept as the source sent it (fee kind, collection method): text or a number."""
    if value is None:
        return None
    if value.__class__ is int:
        return _int_text(value, field)
    if isinstance(value, str):
        return value.strip() or None
    raise RecordError(field, value, "must be text or a number")


def _items(record: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """A nested list of the body (missing = empty), every item an object, with its present fields only."""
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(key, value, "must be a list")
    items: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise RecordError(f"{key}[{index}]", item, "must be an object")
        items.append(_present(item))
    return items


def _positive_number(value: Any, field: str) -> float:
    """ThoiGianGiaiQuyet: a positive finite number (text may use a decimal comma, "0,5")."""
    number: float | None = None
    try:
        if value.__class__ is int or value.__class__ is float:
            number = float(value)
        elif isinstance(value, str):
            text = value.strip()
            if "," in text and "." not in text:
                text = text.replace(",", ".")
            number = float(text)
    except (ValueError, OverflowError):
        number = None
    if number is None or not (0 < number < float("inf")):
        raise RecordError(field, value, "must be a positive number")
    return number


def _amount(value: Any, field: str) -> int:
    """Gia: a whole, non-negative amount in VND."""
    amount: int | None = None
    if value.__class__ is int or (isinstance(value, float) and value.is_integer()):
        amount = int(value)
    elif isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] == "-" else text
        if digits.isascii() and digits.isdigit():
            amount = int(text)
    if amount is None:
        raise RecordError(field, value, "must be a whole amount in VND")
    if amount < 0:
        raise RecordError(field, value, "must not be negative")
    return amount


def _time_unit(value: Any, field: str) -> TimeUnit:
    if isinstance(value, str):
        unit = _unit_cache.get(value)
        if unit is None:
            unit = _UNIT_WORDS.get(_fold(value))
            if unit is None:
                raise RecordError(field, value, "must be Giờ, Ngày làm việc, Ngày or Tháng")
            if len(_unit_cache) < 256:
                _unit_cache[value] = unit
        return unit
    raise RecordError(field, value, "must be Giờ, Ngày làm việc, Ngày or Tháng (no numeric codes are documented)")


def _delivery(value: Any, field: str) -> DeliveryChannel:
    if isinstance(value, str):
        channel = _delivery_cache.get(value)
        if channel is not None:
            return channel
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            channel = _DELIVERY_WORDS.get(_fold(text))
            if channel is None:
                raise RecordError(field, value, "must be 0 trực tiếp, 1 bưu chính or 2 điện tử")
            if len(_delivery_cache) < 256:
                _delivery_cache[value] = channel
            return channel
    code = _code(value, field)
    channel = _DELIVERY_CODES.get(code)
    if channel is None:
        raise RecordError(field, value, "must be 0 trực tiếp, 1 bưu chính or 2 điện tử")
    return channel


def _digest(identifier: str) -> str:
    # same as privacy.applicant_digest, with the normalised text reused for the free-text check
    return hashlib.sha256(identifier.encode()).hexdigest()


# contract field -> export field, to name the export field when a contract model refuses a value
_CONTRACT_FIELDS: Final = {
    "dossier_id": "MaHoSo",
    "agency_code": "DonViXuLy",
    "channel": "KenhThucHien",
    "ma_tthc": "MaTTHC",
    "procedure_version": "PhienBanTTHC",
    "applicant_type": "LoaiDoiTuong",
    "applicant_ref": "MaDoiTuong",
    "submitted_at": "NgayNopHoSo",
    "received_at": "NgayTiepNhan",
    "due_at": "NgayHenTra",
    "statutory_time": "ThoiGianGiaiQuyet",
    "components": "TaiLieuNop",
    "refused_at": "NgayTuChoi",
    "reason": "LyDo",
    "supplement_id": "HoSoBoSungId",
    "requested_at": "NgayBoSung",
    "content": "NoiDungBoSung",
    "citizen_deadline_at": "ThoiHanBoSung",
    "previous_due_at": "NgayHenTraTruoc",
    "new_due_at": "NgayHenTraMoi",
    "paid_at": "NgayThanhToan",
    "fee_lines": "DanhSachLePhi",
    "finished_at": "NgayKetThucXuLy",
    "result_docs": "DanhSachGiayToKetQua",
    "delivered_at": "NgayTra",
    "delivery_channel": "HinhThuc",
    "withdrawn_at": "NgayRutHoSo",
    "stopped_at": "NgayDungXuLy",
}


_P = TypeVar("_P", bound=EventPayload)


def _build(model: type[_P], fallback: str, **fields: Any) -> _P:
    """Validate one payload; a refusal by the contract becomes a RecordError naming the export field.

    Nested records (components, fee lines, result documents, the statutory time) are passed as dicts so
    the whole payload is validated in one call into pydantic-core (a model per item costs a Python-level
    ``__init__`` each).
    """
    try:
        return model(**fields)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise RecordError(_export_field(error.get("loc", ()), fallback), error.get("input"), error["msg"]) from None


def _export_field(loc: tuple[int | str, ...], fallback: str) -> str:
    """The export field of a pydantic error location, e.g. ('components', 0, 'component_code')."""
    if not loc:
        return fallback
    parent = _CONTRACT_FIELDS.get(str(loc[0]), fallback)
    if len(loc) >= 3:
        child = _NESTED_FIELDS.get((str(loc[0]), str(loc[2])), str(loc[2]))
        return f"{parent}[{loc[1]}].{child}"
    if len(loc) == 2:
        return _NESTED_FIELDS.get((str(loc[0]), str(loc[1])), f"{parent}.{loc[1]}")
    return parent


_NESTED_FIELDS: Final = {
    ("components", "component_code"): "MaThanhPhanHoSo",
    ("components", "digitized"): "DuocSoHoa",
    ("components", "reused_from_store"): "DuocLayTuKhoDMQG",
    ("components", "reused_digital_data"): "HoSoCoThanhPhanSoHoa",
    ("fee_lines", "fee_code"): "MaPhiLePhi",
    ("fee_lines", "name"): "TenPhiLePhi",
    ("fee_lines", "amount_vnd"): "Gia",
    ("fee_lines", "fee_kind"): "LoaiPhiLePhi",
    ("fee_lines", "collection_method"): "HinhThucThu",
    ("result_docs", "name"): "TenGiayTo",
    ("result_docs", "result_code"): "MaKetQua",
    ("result_docs", "digitally_signed"): "DuocKySo",
    ("result_docs", "synced_to_citizen_store"): "DaDongBoKhoDMQG",
    ("statutory_time", "value"): "ThoiGianGiaiQuyet",
    ("statutory_time", "unit"): "DonViTinh",
}


# --- the mapping ---------------------------------------------------------------------------------------


def _unit_code(record: Mapping[str, Any], default_unit: str | None) -> str:
    value = record.get("MaDVHC")
    if value is None:
        if default_unit is None:
            raise RecordError("MaDVHC", None, "required, the dossier's commune code (or the command's --unit default)")
        value = default_unit
    if isinstance(value, str):
        code = value.strip()
        if _UNIT_CODE.fullmatch(code):
            return code
    raise RecordError("MaDVHC", value, "must be a unit code as text, 5 digits (commune), 2 (province) or 3 (district)")


def _required(record: Mapping[str, Any], key: str, why: str = "required") -> Any:
    value = record.get(key)
    if value is None:
        raise RecordError(key, None, why)
    return value


def _applicant(record: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """The applicant digest (MaDoiTuong, else ChuHoSo) and the personal values free text must not contain."""
    identifier: str | None = None
    pii: list[str] = []
    for key in ("MaDoiTuong", "ChuHoSo"):
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            # a JSON number drops the leading zeros of a CCCD (001...), which would change the pseudonym
            raise RecordError(key, _REDACTED, "must be text (a number loses an identifier's leading zeros)")
        normalized = normalize_identifier(value)
        if normalized and identifier is None:
            identifier = normalized
        for variant in (value.strip().casefold(), normalized.casefold()):
            if len(variant) >= _MIN_PII_LENGTH:
                pii.append(variant)
    for key in ("SoDienThoai", "Email"):
        value = record.get(key)
        if value.__class__ is int and -_BIG_INT < value < _BIG_INT:
            value = str(value)
        if isinstance(value, str):
            variant = value.strip().casefold()
            if len(variant) >= _MIN_PII_LENGTH:
                pii.append(variant)
    if identifier is None:
        return None, tuple(pii)
    try:
        return _digest(identifier), tuple(pii)
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800" escape
        raise RecordError("MaDoiTuong", _REDACTED, "not valid Unicode text") from None


def _not_before(later: datetime, later_field: str, earlier: datetime | None, earlier_field: str) -> None:
    if earlier is not None and later < earlier:
        raise RecordError(later_field, later.isoformat(), f"is before {earlier_field} ({earlier.isoformat()})")


def _components(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """TaiLieuNop as DossierComponent fields (validated with the DossierReceived that carries them)."""
    reused = _flag(record.get("HoSoCoThanhPhanSoHoa"), "HoSoCoThanhPhanSoHoa")
    components: list[dict[str, Any]] = []
    for index, item in enumerate(_items(record, "TaiLieuNop")):
        prefix = f"TaiLieuNop[{index}]."
        if _flag(item.get("IsDeleted"), prefix + "IsDeleted"):
            continue
        code = _id(_required_item(item, "MaThanhPhanHoSo", prefix), prefix + "MaThanhPhanHoSo")
        digitized_flag = item.get("DuocSoHoa")
        digitized = (
            _flag(digitized_flag, prefix + "DuocSoHoa")
            if digitized_flag is not None
            else item.get("DuongDanTaiTepTin") is not None
        )
        components.append(
            {
                "component_code": code,
                "digitized": digitized,
                "reused_from_store": _flag(item.get("DuocLayTuKhoDMQG"), prefix + "DuocLayTuKhoDMQG"),
                "reused_digital_data": reused,
            }
        )
    return components


def _required_item(item: Mapping[str, Any], key: str, prefix: str) -> Any:
    value = item.get(key)
    if value is None:
        raise RecordError(prefix + key, None, "required")
    return value


def _statutory(record: Mapping[str, Any]) -> tuple[float, TimeUnit]:
    """ThoiGianGiaiQuyet + DonViTinh, both required for a received dossier."""
    raw_value = record.get("ThoiGianGiaiQuyet")
    raw_unit = record.get("DonViTinh")
    if raw_value is None:
        raise RecordError(
            "ThoiGianGiaiQuyet",
            None,
            "required for a received dossier (the statutory time of the procedure is not inferred from NgayHenTra)",
        )
    if raw_unit is None:
        raise RecordError("DonViTinh", None, "required with ThoiGianGiaiQuyet (Giờ, Ngày làm việc, Ngày or Tháng)")
    return _positive_number(raw_value, "ThoiGianGiaiQuyet"), _time_unit(raw_unit, "DonViTinh")


def _fee_lines(record: Mapping[str, Any], pii: tuple[str, ...]) -> tuple[list[dict[str, Any]], int]:
    """DanhSachLePhi as FeeLine fields, and their total."""
    lines: list[dict[str, Any]] = []
    total = 0
    for index, item in enumerate(_items(record, "DanhSachLePhi")):
        prefix = f"DanhSachLePhi[{index}]."
        amount = _amount(_required_item(item, "Gia", prefix), prefix + "Gia")
        total += amount
        lines.append(
            {
                "fee_code": _opt_str(item.get("MaPhiLePhi"), prefix + "MaPhiLePhi"),
                "name": _text(item.get("TenPhiLePhi"), prefix + "TenPhiLePhi", pii),
                "amount_vnd": amount,
                "fee_kind": _opt_str(item.get("LoaiPhiLePhi"), prefix + "LoaiPhiLePhi"),
                "collection_method": _opt_str(item.get("HinhThucThu"), prefix + "HinhThucThu"),
            }
        )
    return lines, total


def _result_docs(record: Mapping[str, Any], pii: tuple[str, ...]) -> list[dict[str, Any]]:
    """DanhSachGiayToKetQua as ResultDocument fields."""
    docs: list[dict[str, Any]] = []
    for index, item in enumerate(_items(record, "DanhSachGiayToKetQua")):
        prefix = f"DanhSachGiayToKetQua[{index}]."
        result_code = _opt_str(item.get("MaKetQua"), prefix + "MaKetQua")
        link = item.get("DuongDanTepTinKetQua")
        docs.append(
            {
                "name": _text(item.get("TenGiayTo"), prefix + "TenGiayTo", pii),
                "result_code": result_code,
                "electronic": result_code is not None and link is not None,
                "digitally_signed": _flag(item.get("DuocKySo"), prefix + "DuocKySo"),
                "synced_to_citizen_store": _flag(item.get("DaDongBoKhoDMQG"), prefix + "DaDongBoKhoDMQG"),
            }
        )
    return docs


class _Dossier:
    """The top-level facts of one record, parsed once and shared by the fact builders below."""

    __slots__ = (
        "applicant_ref",
        "channel",
        "common",
        "dossier_id",
        "facts",
        "finished_at",
        "ma_tthc",
        "pii",
        "procedure_version",
        "raw_channel",
        "receipt_at",
        "received_at",
        "record",
        "status",
        "submitted_at",
        "unit",
    )

    def __init__(self, record: Mapping[str, Any], default_unit: str | None) -> None:
        """Read and check the fields every fact needs; the order of the checks is the order of the errors."""
        self.record = record = _present(record)
        self.dossier_id = _id(_required(record, "MaHoSo"), "MaHoSo")
        self.unit = _unit_code(record, default_unit)
        agency = _required(record, "DonViXuLy")
        if not (isinstance(agency, str) and _AGENCY_CODE.fullmatch(agency.strip())):
            raise RecordError("DonViXuLy", agency, "must be the DVCQG agency code (MADONVI, e.g. 000.00.01.H26)")
        self.common: dict[str, Any] = {"dossier_id": self.dossier_id, "agency_code": agency.strip()}
        raw_status = _required(record, "TrangThaiHoSo")
        self.status = _code(raw_status, "TrangThaiHoSo")
        if self.status not in _STATUSES:
            raise RecordError("TrangThaiHoSo", raw_status, "must be a status code 1-10 (DOMAIN §2.2)")
        raw_tthc = _required(record, "MaTTHC")
        if not (isinstance(raw_tthc, str) and _MA_TTHC.fullmatch(raw_tthc.strip())):
            raise RecordError("MaTTHC", raw_tthc, "must be a national procedure code d.dddddd, e.g. 1.001776")
        self.ma_tthc = raw_tthc.strip()
        self.raw_channel = record.get("KenhThucHien")
        channel = Channel.DIRECT if self.raw_channel is None else _CHANNELS.get(_code(self.raw_channel, "KenhThucHien"))
        if channel is None:
            raise RecordError("KenhThucHien", self.raw_channel, "must be 1 trực tiếp, 2 trực tuyến or 3 bưu chính")
        self.channel = channel
        self.applicant_ref, self.pii = _applicant(record)
        self.submitted_at = _opt_time(record.get("NgayNopHoSo"), "NgayNopHoSo")
        self.received_at = _opt_time(record.get("NgayTiepNhan"), "NgayTiepNhan")
        self.finished_at = _opt_time(record.get("NgayKetThucXuLy"), "NgayKetThucXuLy")
        # statuses 1 and 3 were never received, whatever NgayTiepNhan says
        self.receipt_at = None if self.status in (1, 3) else self.received_at
        version = record.get("PhienBanTTHC")
        self.procedure_version = UNSPECIFIED_VERSION if version is None else _id(version, "PhienBanTTHC")
        # (kind, time, payload) in logical order; a stable sort by time keeps that order for equal instants
        self.facts: list[tuple[str, datetime, EventPayload]] = []

    def applicant(self) -> dict[str, Any]:
        """The submission facts DossierSubmitted and DossierReceived both carry."""
        raw_type = _required(self.record, "LoaiDoiTuong")
        applicant_type = _APPLICANT_TYPES.get(_code(raw_type, "LoaiDoiTuong"))
        if applicant_type is None:
            raise RecordError("LoaiDoiTuong", raw_type, "must be 1 cá nhân or 2 tổ chức")
        if self.applicant_ref is None:
            raise RecordError("MaDoiTuong", None, "required, or ChuHoSo (the applicant is pseudonymised from it)")
        return {
            "channel": self.channel,
            "ma_tthc": self.ma_tthc,
            "procedure_version": self.procedure_version,
            "applicant_type": applicant_type,
            "applicant_ref": self.applicant_ref,
        }

    def add(self, kind: str, time: datetime, payload: EventPayload) -> None:
        """Record a fact; ``kind`` becomes the stable suffix of its event id."""
        self.facts.append((kind, time, payload))


def _submission(dossier: _Dossier) -> None:
    """DossierSubmitted (online, with NgayNopHoSo); checks what statuses 1 and 7 need before the receipt."""
    record, status = dossier.record, dossier.status
    if status == 1:
        if dossier.channel is not Channel.ONLINE:
            raise RecordError(
                "KenhThucHien", dossier.raw_channel, "must be 2 for status 1 (Mới đăng ký is an online submission)"
            )
        if dossier.submitted_at is None:
            raise RecordError("NgayNopHoSo", None, "required for status 1 (Mới đăng ký, the submission time)")
    submitted = dossier.channel is Channel.ONLINE and dossier.submitted_at is not None
    if submitted and dossier.submitted_at is not None:
        payload = _build(
            DossierSubmitted,
            "NgayNopHoSo",
            **dossier.common,
            **dossier.applicant(),
            submitted_at=dossier.submitted_at,
            submitted_via_dvcqg=_flag(record.get("NopTuCongDVCQG"), "NopTuCongDVCQG"),
            vneid_authenticated=_flag(record.get("TaiKhoanDuocXacThucVoiVNeID"), "TaiKhoanDuocXacThucVoiVNeID"),
        )
        dossier.add("submitted", dossier.submitted_at, payload)
    # a withdrawal may come before receipt (online submission withdrawn); every other status was received
    if dossier.receipt_at is None and status not in (1, 3) and not (status == 7 and submitted):
        raise RecordError("NgayTiepNhan", None, f"required for status {status} (the dossier was received)")


def _supplements(dossier: _Dossier) -> None:
    """SupplementRequested / SupplementReceived pairs (Mẫu 02) from DanhSachHoSoBoSung."""
    seen: set[str] = set()
    receipt_at = dossier.receipt_at
    for index, item in enumerate(_items(dossier.record, "DanhSachHoSoBoSung")):
        prefix = f"DanhSachHoSoBoSung[{index}]."
        supplement_id = _id(_required_item(item, "HoSoBoSungId", prefix), prefix + "HoSoBoSungId")
        if supplement_id in seen:
            raise RecordError(prefix + "HoSoBoSungId", supplement_id, "duplicated in DanhSachHoSoBoSung")
        seen.add(supplement_id)
        requested_at = _time(_required_item(item, "NgayBoSung", prefix), prefix + "NgayBoSung")
        # after the receipt the clock was running (paused now); before or at it, the dossier was incomplete
        stage = (
            SupplementStage.PROCESSING
            if receipt_at is not None and requested_at > receipt_at
            else SupplementStage.RECEPTION
        )
        requested = _build(
            SupplementRequested,
            prefix + "NgayBoSung",
            **dossier.common,
            supplement_id=supplement_id,
            requested_at=requested_at,
            stage=stage,
            content=_text(item.get("NoiDungBoSung"), prefix + "NoiDungBoSung", dossier.pii),
            citizen_deadline_at=_opt_time(item.get("ThoiHanBoSung"), prefix + "ThoiHanBoSung"),
        )
        dossier.add(f"supplement_requested:{supplement_id}", requested_at, requested)
        back_at = _opt_time(item.get("NgayTiepNhanBoSung"), prefix + "NgayTiepNhanBoSung")
        if back_at is None:
            continue
        _not_before(back_at, prefix + "NgayTiepNhanBoSung", requested_at, prefix + "NgayBoSung")
        received = _build(
            SupplementReceived,
            prefix + "NgayTiepNhanBoSung",
            **dossier.common,
            supplement_id=supplement_id,
            received_at=back_at,
            previous_due_at=_opt_time(item.get("NgayHenTraTruoc"), prefix + "NgayHenTraTruoc"),
            new_due_at=_opt_time(item.get("NgayHenTraMoi"), prefix + "NgayHenTraMoi"),
        )
        dossier.add(f"supplement_received:{supplement_id}", back_at, received)


def _receipt(dossier: _Dossier, due_at_of: DueAtOf) -> None:
    """DossierReceived (Mẫu 01), or DossierRefused (Mẫu 03) for status 3."""
    record, receipt_at = dossier.record, dossier.receipt_at
    if receipt_at is not None:
        _not_before(receipt_at, "NgayTiepNhan", dossier.submitted_at, "NgayNopHoSo")
        limit, unit = _statutory(record)
        due_at = _opt_time(record.get("NgayHenTra"), "NgayHenTra")
        if due_at is None:
            try:
                due_at = due_at_of(receipt_at, limit, unit)
            except (ValueError, ArithmeticError) as exc:
                raise RecordError("NgayHenTra", None, f"missing, and not computable ({exc})") from None
            if not isinstance(due_at, datetime) or due_at.utcoffset() is None:
                raise RecordError("NgayHenTra", due_at, "missing, and due_at_of did not return an aware datetime")
        _not_before(due_at, "NgayHenTra", receipt_at, "NgayTiepNhan")
        payload = _build(
            DossierReceived,
            "NgayTiepNhan",
            **dossier.common,
            **dossier.applicant(),
            received_at=receipt_at,
            due_at=due_at,
            statutory_time={"value": limit, "unit": unit},
            components=_components(record),
        )
        dossier.add("received", receipt_at, payload)
    if dossier.status == 3:
        refused_at = _opt_time(record.get("NgayTuChoi"), "NgayTuChoi") or dossier.finished_at or dossier.received_at
        if refused_at is None:
            raise RecordError("NgayTuChoi", None, "required for status 3 (or NgayKetThucXuLy, NgayTiepNhan)")
        _not_before(refused_at, "NgayTuChoi", dossier.submitted_at, "NgayNopHoSo")
        reason = _reason(record, dossier.pii)
        dossier.add(
            "refused",
            refused_at,
            _build(DossierRefused, "NgayTuChoi", **dossier.common, refused_at=refused_at, reason=reason),
        )


def _fees(dossier: _Dossier) -> None:
    """FeePaid when the lines sum to more than 0 and the record says paid; the lines are checked always."""
    record = dossier.record
    fee_lines, total = _fee_lines(record, dossier.pii)
    raw_platform = record.get("DuocThanhToanTrucTuyen")
    platform: OnlinePaymentPlatform | None = None
    if raw_platform is not None:
        code = _code(raw_platform, "DuocThanhToanTrucTuyen")
        if code not in (0, 1, 2):
            raise RecordError("DuocThanhToanTrucTuyen", raw_platform, "must be 0, 1 (DVCQG) or 2 (local gateway)")
        platform = _PLATFORMS.get(code)
    paid_at = _opt_time(record.get("NgayThanhToan"), "NgayThanhToan")
    if total == 0 or (platform is None and paid_at is None):
        return
    paid_at = paid_at or dossier.submitted_at or dossier.received_at
    if paid_at is None:
        raise RecordError("NgayThanhToan", None, "required for a paid dossier without NgayNopHoSo or NgayTiepNhan")
    payload = _build(
        FeePaid,
        "NgayThanhToan",
        **dossier.common,
        paid_at=paid_at,
        amount_vnd=total,
        fee_lines=fee_lines,
        paid_online=platform,
    )
    dossier.add("fee_paid", paid_at, payload)


def _result(dossier: _Dossier) -> None:
    """ResultIssued (status 9, 10) and ResultDelivered (status 10)."""
    record, status, finished_at = dossier.record, dossier.status, dossier.finished_at
    if status not in (9, 10):
        return
    if finished_at is None and status == 9:
        raise RecordError("NgayKetThucXuLy", None, "required for status 9 (Đã xử lý xong)")
    if finished_at is not None:
        _not_before(finished_at, "NgayKetThucXuLy", dossier.receipt_at, "NgayTiepNhan")
        docs = _result_docs(record, dossier.pii)
        dossier.add(
            "result_issued",
            finished_at,
            _build(ResultIssued, "NgayKetThucXuLy", **dossier.common, finished_at=finished_at, result_docs=docs),
        )
    if status != 10:
        return
    delivered_at = _time(_required(record, "NgayTra", "required for status 10 (Đã trả kết quả)"), "NgayTra")
    if finished_at is not None:
        _not_before(delivered_at, "NgayTra", finished_at, "NgayKetThucXuLy")
    else:
        _not_before(delivered_at, "NgayTra", dossier.receipt_at, "NgayTiepNhan")
    channel = _delivery(
        _required(record, "HinhThuc", "required for status 10 (how the result was handed over)"), "HinhThuc"
    )
    dossier.add(
        "result_delivered",
        delivered_at,
        _build(ResultDelivered, "NgayTra", **dossier.common, delivered_at=delivered_at, delivery_channel=channel),
    )


def _closure(dossier: _Dossier) -> None:
    """DossierWithdrawn (status 7) and ProcessingStopped (status 8, Mẫu 05)."""
    record, status = dossier.record, dossier.status
    if status == 7:
        withdrawn_at = _opt_time(record.get("NgayRutHoSo"), "NgayRutHoSo") or dossier.finished_at
        if withdrawn_at is None:
            raise RecordError("NgayRutHoSo", None, "required for status 7 (or NgayKetThucXuLy)")
        if dossier.receipt_at is not None:
            _not_before(withdrawn_at, "NgayRutHoSo", dossier.receipt_at, "NgayTiepNhan")
        else:
            _not_before(withdrawn_at, "NgayRutHoSo", dossier.submitted_at, "NgayNopHoSo")
        payload: EventPayload = _build(DossierWithdrawn, "NgayRutHoSo", **dossier.common, withdrawn_at=withdrawn_at)
        dossier.add("withdrawn", withdrawn_at, payload)
    elif status == 8:
        stopped_at = _opt_time(record.get("NgayDungXuLy"), "NgayDungXuLy") or dossier.finished_at
        if stopped_at is None:
            raise RecordError("NgayDungXuLy", None, "required for status 8 (or NgayKetThucXuLy)")
        _not_before(stopped_at, "NgayDungXuLy", dossier.receipt_at, "NgayTiepNhan")
        reason = _reason(record, dossier.pii)
        payload = _build(ProcessingStopped, "NgayDungXuLy", **dossier.common, stopped_at=stopped_at, reason=reason)
        dossier.add("processing_stopped", stopped_at, payload)


def map_sync_body(
    record: Mapping[str, Any],
    *,
    source: str,
    default_unit: str | None,
    due_at_of: DueAtOf,
) -> list[InboundFact]:
    """The dossier history one DVCQG sync body proves, as inbound facts in time order.

    ``source`` is the partner (CloudEvents source) the facts are attributed to; ``default_unit`` the
    commune code for records without MaDVHC; ``due_at_of(received_at, value, unit)`` computes a due date
    when NgayHenTra is missing. Each fact's ``event_id`` is ``"{MaHoSo}:{kind}"`` (``kind`` plus
    ``:{HoSoBoSungId}`` for supplements), so importing the same dossier again — from the same export or
    a later one — yields the same ids for the same facts, and the store keeps each fact once.

    Raises :class:`RecordError` (and nothing else) for a record that breaks a rule.
    """
    if not isinstance(record, Mapping):
        raise RecordError("record", type(record).__name__, "must be an object")
    dossier = _Dossier(record, default_unit)
    _submission(dossier)
    # supplements before the receipt in the list, so a reception-stage one sorts first on a tie
    _supplements(dossier)
    _receipt(dossier, due_at_of)
    _fees(dossier)
    _result(dossier)
    _closure(dossier)
    facts = dossier.facts
    facts.sort(key=_by_time)
    dossier_id, unit = dossier.dossier_id, dossier.unit
    return [
        InboundFact(source=source, event_id=f"{dossier_id}:{kind}", time=time, unit_code=unit, payload=payload)
        for kind, time, payload in facts
    ]


def _by_time(fact: tuple[str, datetime, EventPayload]) -> datetime:
    return fact[1]


def _reason(record: Mapping[str, Any], pii: tuple[str, ...]) -> str:
    value = record.get("LyDo")
    return REASON_NOT_GIVEN if value is None else _text(value, "LyDo", pii)


# --- reading export files ------------------------------------------------------------------------------

#: nested list fields, JSON text in a CSV cell
_LIST_FIELDS: Final = frozenset(
    {"TaiLieuNop", "DanhSachLePhi", "DanhSachHoSoBoSung", "DanhSachGiayToKetQua", "DanhSachTepDinhKemKhac"}
)
_JSONL_SUFFIXES: Final = frozenset({".jsonl", ".ndjson"})
_CHUNK = 1 << 20

Numbered = tuple[int, Mapping[str, Any] | RecordError]


def iter_records(path: Path, *, skip: int = 0) -> Iterator[Numbered]:
    """(record number, record or RecordError) for every record of an export after the first ``skip``.

    Numbers are 1-based and count every line of a ``.jsonl``/``.ndjson`` file (blank lines are skipped
    but numbered) or every data row of a ``.csv`` file (header excluded), so a resumed import
    (``skip`` = the last number done) sees the same numbers. Skipped records are not decoded. A record
    that cannot be decoded is yielded as a RecordError (the line itself is not echoed: it may hold
    personal data); an unreadable file or a CSV without a header raises ``OSError`` / ``ValueError`` when
    iteration starts.
    """
    if skip < 0:
        msg = f"skip must be >= 0, got {skip}"
        raise ValueError(msg)
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return _iter_jsonl(path, skip)
    if suffix == ".csv":
        return _iter_csv(path, skip)
    msg = f"unsupported export {path.name!r}: expected .jsonl, .ndjson or .csv"
    raise ValueError(msg)


def count_records(path: Path) -> int:
    """How many record numbers :func:`iter_records` will use (a progress bar's total), without decoding.

    JSONL: the number of lines (a final newline does not start one). CSV: the data rows, read with the csv
    module because a quoted cell may span lines.
    """
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        lines = 0
        last = b"\n"
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        return lines + (last != b"\n")
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as file:
            rows = sum(1 for _ in csv.reader(file))
        return max(rows - 1, 0)
    msg = f"unsupported export {path.name!r}: expected .jsonl, .ndjson or .csv"
    raise ValueError(msg)


def _iter_jsonl(path: Path, skip: int) -> Iterator[Numbered]:
    loads = json.loads
    with path.open("rb") as file:
        for number, line in enumerate(itertools.islice(file, skip, None), start=skip + 1):
            if not line.strip():
                continue
            try:
                record = loads(line)
            except json.JSONDecodeError as exc:
                yield number, RecordError("record", None, f"not valid JSON ({exc.msg}, column {exc.colno})")
                continue
            except UnicodeDecodeError:
                yield number, RecordError("record", None, "not valid UTF-8")
                continue
            except ValueError as exc:  # e.g. a number beyond the int digit limit
                yield number, RecordError("record", None, f"not decodable ({exc})")
                continue
            if record.__class__ is not dict:
                yield number, RecordError("record", type(record).__name__, "must be a JSON object")
                continue
            yield number, record


def _iter_csv(path: Path, skip: int) -> Iterator[Numbered]:
    loads = json.loads
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None:
            return
        columns = [name.strip() for name in header]
        if len(set(columns)) != len(columns) or "" in columns:
            msg = f"{path.name}: the CSV header has empty or repeated column names"
            raise ValueError(msg)
        lists = [column in _LIST_FIELDS for column in columns]
        width = len(columns)
        for number, row in enumerate(itertools.islice(reader, skip, None), start=skip + 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) > width:
                yield number, RecordError("record", len(row), f"has more cells than the header's {width} columns")
                continue
            try:
                "".join(row).encode("utf-8")
            except UnicodeEncodeError:
                yield number, RecordError("record", None, "not valid UTF-8")
                continue
            record: dict[str, Any] = {}
            error: RecordError | None = None
            for column, is_list, cell in zip(columns, lists, row, strict=False):
                if not cell:
                    continue
                if is_list:
                    try:
                        record[column] = loads(cell)
                    except json.JSONDecodeError as exc:
                        error = RecordError(column, None, f"not valid JSON ({exc.msg}, column {exc.colno})")
                        break
                    except ValueError as exc:
                        error = RecordError(column, None, f"not decodable ({exc})")
                        break
                else:
                    record[column] = cell
            yield number, record if error is None else error
