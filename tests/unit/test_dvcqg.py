"""DVCQG export mapping (services.dossiers.dvcqg) and the applicant pseudonym (services.dossiers.privacy).

The shipped examples (examples/dvcqg) are the fixtures: every shape they contain is mapped and checked,
so the examples cannot drift from what the importer accepts.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from services.dossiers.dvcqg import (
    REASON_NOT_GIVEN,
    UNSPECIFIED_VERSION,
    VN_TZ,
    RecordError,
    count_records,
    iter_records,
    map_sync_body,
)
from services.dossiers.inbound import InboundFact
from services.dossiers.privacy import Pseudonymizer, applicant_digest, normalize_identifier

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dvcqg"
JSONL = EXAMPLES / "commune-month.jsonl"
CSV = EXAMPLES / "commune-month.csv"
BAD = EXAMPLES / "bad.jsonl"
SOURCE = "urn:chiso:import:dvcqg-test"


def never_called(received_at: datetime, value: float, unit: str) -> datetime:
    raise AssertionError("due_at_of must not be called when NgayHenTra is present")


def calendar_due(received_at: datetime, value: float, unit: str) -> datetime:
    """A stand-in calendar: the real one (working time, holidays) is not this module's business."""
    return received_at + timedelta(days=value)


def load(path: Path = JSONL) -> list[dict[str, Any]]:
    records = []
    for _, record in iter_records(path):
        assert not isinstance(record, RecordError), record
        records.append(dict(record))
    return records


RECORDS = load()
BY_ID = {record["MaHoSo"]: record for record in RECORDS}


def mapped(record: dict[str, Any], due_at_of: Any = never_called, default_unit: str | None = None) -> list[InboundFact]:
    return map_sync_body(record, source=SOURCE, default_unit=default_unit, due_at_of=due_at_of)


def kinds(facts: list[InboundFact]) -> list[str]:
    return [fact.event_id.split(":")[1] for fact in facts]


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=VN_TZ)


def rejected(record: dict[str, Any], due_at_of: Any = calendar_due, default_unit: str | None = None) -> RecordError:
    with pytest.raises(RecordError) as caught:
        mapped(record, due_at_of=due_at_of, default_unit=default_unit)
    return caught.value


# --- privacy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 001 099 000 001 ", "001099000001"),
        ("001099000001", "001099000001"),
        ("\t0010990\n00001", "001099000001"),
        ("nguyễn văn giả định", "NGUYỄNVĂNGIẢĐỊNH"),
        # decomposed (NFD) diacritics spell the same name as precomposed ones
        ("nguye\u0302\u0303n", "NGUYỄN"),
    ],
)
def test_normalize_identifier(raw: str, expected: str) -> None:
    assert normalize_identifier(raw) == expected


def test_applicant_digest_is_sha256_of_the_normalised_identifier() -> None:
    assert applicant_digest(" 001 099 000 001") == hashlib.sha256(b"001099000001").hexdigest()
    assert applicant_digest("001099000001") == applicant_digest("0010 9900 0001")
    with pytest.raises(ValueError, match="empty"):
        applicant_digest("  \t ")


def test_pseudonymizer_rekeys_with_hmac_and_refuses_short_secrets() -> None:
    secret = b"0123456789abcdef"
    digest = applicant_digest("001099000001")
    pseudonym = Pseudonymizer(secret).rekey(digest)
    assert pseudonym == hmac.new(secret, digest.encode(), hashlib.sha256).hexdigest()
    assert len(pseudonym) == 64
    assert pseudonym != digest
    assert Pseudonymizer(b"another secret of 32 bytes......").rekey(digest) != pseudonym
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymizer(b"too short")
    assert "0123" not in repr(Pseudonymizer(secret))


@pytest.mark.parametrize("not_a_digest", ["001099000001", "A" * 64, "g" * 64, "a" * 63, ""])
def test_pseudonymizer_refuses_anything_but_a_digest(not_a_digest: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        Pseudonymizer(b"0123456789abcdef").rekey(not_a_digest)


# --- the shipped example: every shape ------------------------------------------------------------------


def test_every_example_record_maps() -> None:
    counts: Counter[str] = Counter()
    for record in RECORDS:
        facts = mapped(record)
        assert [fact.time for fact in facts] == sorted(fact.time for fact in facts)
        assert len({fact.event_id for fact in facts}) == len(facts)
        for fact in facts:
            assert fact.source == SOURCE
            assert fact.unit_code == "00004"
            assert fact.event_id.startswith(record["MaHoSo"] + ":")
            assert fact.payload.dossier_id == record["MaHoSo"]  # type: ignore[attr-defined]
            assert fact.payload.agency_code == "000.04.01.H26"  # type: ignore[attr-defined]
            counts[type(fact.payload).__name__] += 1
    assert len(RECORDS) == 30
    assert counts == {
        "DossierReceived": 29,
        "ResultIssued": 26,
        "ResultDelivered": 25,
        "FeePaid": 10,
        "DossierSubmitted": 8,
        "SupplementRequested": 4,
        "SupplementReceived": 4,
        "DossierRefused": 1,
        "DossierWithdrawn": 1,
        "ProcessingStopped": 1,
    }


def test_direct_dossier_received_finished_delivered() -> None:
    record = BY_ID["000.04.01.H26-260302-0001"]
    facts = mapped(record)
    assert kinds(facts) == ["received", "result_issued", "result_delivered"]
    received = facts[0].payload
    assert isinstance(received, DossierReceived)
    assert received.channel is Channel.DIRECT
    assert received.ma_tthc == "1.001193"
    assert received.procedure_version == UNSPECIFIED_VERSION
    assert received.applicant_type is ApplicantType.INDIVIDUAL
    assert received.applicant_ref == applicant_digest("001099000001")
    assert received.received_at == local("20260302081200")
    assert received.due_at == local("20260305081200")
    assert (received.statutory_time.value, received.statutory_time.unit) == (3, TimeUnit.WORKING_DAYS)
    assert [(c.component_code, c.digitized, c.reused_from_store) for c in received.components] == [
        ("1.001193-TP1", True, False),
        ("1.001193-TP2", False, False),
    ]
    issued = facts[1].payload
    assert isinstance(issued, ResultIssued)
    assert issued.finished_at == local("20260304154000")
    assert [(d.name, d.electronic) for d in issued.result_docs] == [("Giấy khai sinh (bản chính)", False)]
    delivered = facts[2].payload
    assert isinstance(delivered, ResultDelivered)
    assert delivered.delivery_channel is DeliveryChannel.IN_PERSON
    assert facts[2].time == local("20260305090500")


def test_online_dossier_paid_on_dvcqg_with_an_electronic_result() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260305-0002"])
    assert kinds(facts) == ["submitted", "fee_paid", "received", "result_issued", "result_delivered"]
    submitted, paid, received, issued, delivered = (fact.payload for fact in facts)
    assert isinstance(submitted, DossierSubmitted)
    assert submitted.channel is Channel.ONLINE
    assert submitted.submitted_at == local("20260305214700")
    assert submitted.submitted_via_dvcqg
    assert submitted.vneid_authenticated
    assert isinstance(paid, FeePaid)
    # no NgayThanhToan: an online payment is dated at the online submission
    assert paid.paid_at == submitted.submitted_at
    assert paid.paid_online is OnlinePaymentPlatform.DVCQG
    assert paid.amount_vnd == 8000
    assert [(line.fee_code, line.amount_vnd) for line in paid.fee_lines] == [("LP-TL", 8000)]
    assert isinstance(received, DossierReceived)
    assert all(component.reused_digital_data for component in received.components)
    assert isinstance(issued, ResultIssued)
    assert [(d.electronic, d.digitally_signed, d.synced_to_citizen_store) for d in issued.result_docs] == [
        (True, True, True)
    ]
    assert isinstance(delivered, ResultDelivered)
    assert delivered.delivery_channel is DeliveryChannel.ELECTRONIC


def test_online_payment_through_the_local_gateway() -> None:
    paid = [f.payload for f in mapped(BY_ID["000.04.01.H26-260314-0001"]) if isinstance(f.payload, FeePaid)]
    assert [(p.paid_online, p.amount_vnd) for p in paid] == [(OnlinePaymentPlatform.LOCAL_GATEWAY, 24000)]


def test_fee_paid_at_the_desk_is_dated_and_offline() -> None:
    paid = [f.payload for f in mapped(BY_ID["000.04.01.H26-260317-0001"]) if isinstance(f.payload, FeePaid)]
    assert [(p.paid_online, p.amount_vnd, p.paid_at) for p in paid] == [(None, 24000, local("20260317100700"))]


def test_fee_lines_without_a_payment_signal_give_no_fee_paid() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260302-0002"])
    del record["NgayThanhToan"]
    assert "fee_paid" not in kinds(mapped(record))
    record["DuocThanhToanTrucTuyen"] = 0
    assert "fee_paid" not in kinds(mapped(record))


def test_zero_fee_lines_are_not_a_payment() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260305-0002"])
    record["DanhSachLePhi"][0]["Gia"] = 0
    assert "fee_paid" not in kinds(mapped(record))


def test_postal_submission_with_result_by_post() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260309-0001"])
    assert facts[0].payload.channel is Channel.POSTAL  # type: ignore[attr-defined]
    assert facts[-1].payload.delivery_channel is DeliveryChannel.POSTAL  # type: ignore[attr-defined]


def test_supplement_requested_before_acceptance_is_at_reception() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260310-0002"])
    assert kinds(facts) == [
        "submitted",
        "supplement_requested",
        "supplement_received",
        "received",
        "result_issued",
        "result_delivered",
    ]
    requested = facts[1].payload
    assert isinstance(requested, SupplementRequested)
    assert requested.stage is SupplementStage.RECEPTION
    assert requested.supplement_id == "000.04.01.H26-260310-0002-BS1"
    assert requested.content == "Bổ sung bản chụp giấy chứng sinh rõ nét"
    assert facts[2].event_id == "000.04.01.H26-260310-0002:supplement_received:000.04.01.H26-260310-0002-BS1"


def test_one_processing_supplement_with_the_due_dates_the_source_stated() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260312-0001"])
    assert kinds(facts) == [
        "received",
        "supplement_requested",
        "supplement_received",
        "result_issued",
        "result_delivered",
    ]
    requested, back = facts[1].payload, facts[2].payload
    assert isinstance(requested, SupplementRequested)
    assert requested.stage is SupplementStage.PROCESSING
    assert isinstance(back, SupplementReceived)
    assert back.received_at == local("20260319084500")
    assert back.previous_due_at == local("20260323090000")
    assert back.new_due_at == local("20260326090000")


def test_two_processing_supplements() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260313-0001"])
    stages = [f.payload.stage for f in facts if isinstance(f.payload, SupplementRequested)]
    assert stages == [SupplementStage.PROCESSING, SupplementStage.PROCESSING]
    assert sum(isinstance(f.payload, SupplementReceived) for f in facts) == 2


def test_late_dossier_keeps_its_original_due_date() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260310-0001"])
    received, issued = facts[0].payload, facts[1].payload
    assert isinstance(received, DossierReceived)
    assert isinstance(issued, ResultIssued)
    assert issued.finished_at > received.due_at


def test_status_9_has_no_delivery() -> None:
    assert kinds(mapped(BY_ID["000.04.01.H26-260316-0001"])) == ["received", "result_issued"]


def test_refused_dossier_is_never_received() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260317-0002"])
    assert kinds(facts) == ["refused"]
    refused = facts[0].payload
    assert isinstance(refused, DossierRefused)
    assert refused.refused_at == local("20260317142000")
    assert refused.reason == "Hồ sơ không thuộc thẩm quyền giải quyết của UBND phường"


def test_refusal_falls_back_to_the_other_dates_and_a_stated_reason() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260317-0002"])
    del record["NgayTuChoi"], record["LyDo"]
    record["NgayTiepNhan"] = "20260317141000"
    (refused,) = (fact.payload for fact in mapped(record))
    assert isinstance(refused, DossierRefused)
    assert (refused.refused_at, refused.reason) == (local("20260317141000"), REASON_NOT_GIVEN)


def test_withdrawn_dossier() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260318-0001"])
    assert kinds(facts) == ["received", "withdrawn"]
    assert isinstance(facts[1].payload, DossierWithdrawn)
    assert facts[1].payload.withdrawn_at == local("20260320091500")


def test_online_submission_withdrawn_before_receipt() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260326-0001"])
    del record["NgayTiepNhan"]
    record.update(TrangThaiHoSo=7, NgayRutHoSo="20260326170500")
    assert kinds(mapped(record)) == ["submitted", "withdrawn"]


def test_stopped_dossier() -> None:
    facts = mapped(BY_ID["000.04.01.H26-260318-0002"])
    assert kinds(facts) == ["received", "processing_stopped"]
    stopped = facts[1].payload
    assert isinstance(stopped, ProcessingStopped)
    assert stopped.stopped_at == local("20260323103000")
    assert stopped.reason.startswith("Một bên không đủ điều kiện")


def test_open_dossier_has_only_its_beginning() -> None:
    assert kinds(mapped(BY_ID["000.04.01.H26-260326-0001"])) == ["submitted", "received"]


def test_status_1_is_a_submission_awaiting_acceptance() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260326-0001"])
    record["TrangThaiHoSo"] = 1
    assert kinds(mapped(record)) == ["submitted"]


def test_delivered_without_a_finish_time_has_no_result_issued() -> None:
    record = copy.deepcopy(BY_ID[DIRECT])
    del record["NgayKetThucXuLy"]
    assert kinds(mapped(record)) == ["received", "result_delivered"]


def test_status_beats_dates_of_stages_not_reached() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260316-0001"])
    record["NgayTra"] = "20260319113000"  # some exporters fill NgayTra with the finish date
    assert kinds(mapped(record)) == ["received", "result_issued"]


def test_deleted_components_are_skipped_and_digitisation_falls_back_to_the_file_link() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260302-0001"])
    record["TaiLieuNop"][0]["IsDeleted"] = 1
    del record["TaiLieuNop"][1]["DuocSoHoa"]
    record["TaiLieuNop"][1]["DuongDanTaiTepTin"] = "https://motcua.example.invalid/x.pdf"
    received = mapped(record)[0].payload
    assert isinstance(received, DossierReceived)
    assert [(c.component_code, c.digitized) for c in received.components] == [("1.001193-TP2", True)]


def test_extension_fields_procedure_version_and_unit_default() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260302-0001"])
    record["PhienBanTTHC"] = "QĐ 1251/QĐ-UBND 2025"
    del record["MaDVHC"]
    facts = mapped(record, default_unit="00070")
    assert {fact.unit_code for fact in facts} == {"00070"}
    assert facts[0].payload.procedure_version == "QĐ 1251/QĐ-UBND 2025"  # type: ignore[attr-defined]
    # the record's own MaDVHC wins over the default
    assert {fact.unit_code for fact in mapped(BY_ID["000.04.01.H26-260302-0001"], default_unit="00070")} == {"00004"}


def test_iso_8601_dates_are_accepted() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260302-0001"])
    record["NgayTiepNhan"] = "2026-03-02T08:12:00+07:00"
    record["NgayHenTra"] = "2026-03-05T01:12:00Z"
    record["NgayKetThucXuLy"] = "2026-03-04 15:40:00"  # naive: local time
    assert mapped(record) == mapped(BY_ID["000.04.01.H26-260302-0001"])


def test_missing_due_date_is_computed_from_the_statutory_time() -> None:
    calls: list[tuple[datetime, float, str]] = []

    def due_at_of(received_at: datetime, value: float, unit: str) -> datetime:
        calls.append((received_at, value, unit))
        return received_at + timedelta(days=4)

    record = copy.deepcopy(BY_ID["000.04.01.H26-260302-0001"])
    del record["NgayHenTra"]
    received = mapped(record, due_at_of=due_at_of)[0].payload
    assert calls == [(local("20260302081200"), 3.0, "working_days")]
    assert isinstance(received, DossierReceived)
    assert received.due_at == local("20260306081200")


@pytest.mark.parametrize(
    ("spelling", "unit"),
    [
        ("Ngày làm việc", TimeUnit.WORKING_DAYS),
        ("  ngay   lam viec ", TimeUnit.WORKING_DAYS),
        ("NGÀY LÀM VIỆC", TimeUnit.WORKING_DAYS),
        ("Ngày", TimeUnit.CALENDAR_DAYS),
        ("Giờ", TimeUnit.WORKING_HOURS),
        ("giờ làm việc", TimeUnit.WORKING_HOURS),
        ("Tháng", TimeUnit.MONTHS),
        ("working_days", TimeUnit.WORKING_DAYS),
    ],
)
def test_don_vi_tinh_spellings(spelling: str, unit: TimeUnit) -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260302-0001"])
    record["DonViTinh"] = spelling
    received = mapped(record)[0].payload
    assert isinstance(received, DossierReceived)
    assert received.statutory_time.unit is unit


# --- every rule ----------------------------------------------------------------------------------------


def _set(path: str, value: Any) -> Any:
    """A mutation of a record: set (or, with ..., delete) a field, nested paths as 'List.0.Field'."""

    def mutate(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = record
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        key: Any = int(last) if last.isdigit() else last
        if value is ...:
            del target[key]
        else:
            target[key] = value

    return mutate


DIRECT = "000.04.01.H26-260302-0001"  # received, finished, delivered, no lists of fees
FEES = "000.04.01.H26-260302-0002"  # with a fee line paid at the desk
SUPPLEMENT = "000.04.01.H26-260312-0001"  # one processing supplement
OPEN = "000.04.01.H26-260326-0001"  # online, status 4


@pytest.mark.parametrize(
    ("base", "mutations", "field", "rule"),
    [
        (DIRECT, [_set("TrangThaiHoSo", 11)], "TrangThaiHoSo", "status code 1-10"),
        (DIRECT, [_set("TrangThaiHoSo", "mười")], "TrangThaiHoSo", "integer code"),
        (DIRECT, [_set("TrangThaiHoSo", True)], "TrangThaiHoSo", "integer code"),
        (DIRECT, [_set("TrangThaiHoSo", ...)], "TrangThaiHoSo", "required"),
        (DIRECT, [_set("NgayTiepNhan", "2026-13-40")], "NgayTiepNhan", "not a date"),
        (DIRECT, [_set("NgayTiepNhan", "20261340081200")], "NgayTiepNhan", "not a date"),
        (DIRECT, [_set("NgayTiepNhan", "00260302081200")], "NgayTiepNhan", "year outside"),
        (DIRECT, [_set("NgayTiepNhan", ...)], "NgayTiepNhan", "required for status 10"),
        (DIRECT, [_set("KenhThucHien", 9)], "KenhThucHien", "1 trực tiếp, 2 trực tuyến or 3"),
        (DIRECT, [_set("NgayHenTra", "20260301081200")], "NgayHenTra", "is before NgayTiepNhan"),
        (DIRECT, [_set("MaHoSo", ...)], "MaHoSo", "required"),
        (DIRECT, [_set("MaHoSo", "x" * 201)], "MaHoSo", "1-200 characters"),
        (DIRECT, [_set("MaDVHC", ...)], "MaDVHC", "required"),
        (DIRECT, [_set("MaDVHC", "4")], "MaDVHC", "unit code"),
        (DIRECT, [_set("MaDVHC", 4)], "MaDVHC", "unit code"),
        (DIRECT, [_set("DonViXuLy", "UBND phường Ba Đình")], "DonViXuLy", "agency code"),
        (DIRECT, [_set("DonViXuLy", ...)], "DonViXuLy", "required"),
        (DIRECT, [_set("MaTTHC", "1001193")], "MaTTHC", "d.dddddd"),
        (DIRECT, [_set("LoaiDoiTuong", 3)], "LoaiDoiTuong", "1 cá nhân or 2 tổ chức"),
        (DIRECT, [_set("MaDoiTuong", ...), _set("ChuHoSo", ...)], "MaDoiTuong", "required"),
        (DIRECT, [_set("MaDoiTuong", 1099000001)], "MaDoiTuong", "leading zeros"),
        (DIRECT, [_set("ThoiGianGiaiQuyet", ...)], "ThoiGianGiaiQuyet", "not inferred from NgayHenTra"),
        (DIRECT, [_set("ThoiGianGiaiQuyet", 0)], "ThoiGianGiaiQuyet", "positive number"),
        (DIRECT, [_set("ThoiGianGiaiQuyet", "ba")], "ThoiGianGiaiQuyet", "positive number"),
        (DIRECT, [_set("DonViTinh", ...)], "DonViTinh", "required"),
        (DIRECT, [_set("DonViTinh", "Tuần")], "DonViTinh", "Giờ, Ngày làm việc, Ngày or Tháng"),
        (DIRECT, [_set("DonViTinh", 2)], "DonViTinh", "no numeric codes"),
        (DIRECT, [_set("TaiLieuNop", "TP1")], "TaiLieuNop", "must be a list"),
        (DIRECT, [_set("TaiLieuNop.0", "TP1")], "TaiLieuNop[0]", "must be an object"),
        (DIRECT, [_set("TaiLieuNop.0.IsDeleted", "có")], "TaiLieuNop[0].IsDeleted", "flag 0 or 1"),
        (DIRECT, [_set("TaiLieuNop.0.MaThanhPhanHoSo", "")], "TaiLieuNop[0].MaThanhPhanHoSo", "required"),
        (DIRECT, [_set("NgayKetThucXuLy", "20260301000000")], "NgayKetThucXuLy", "before NgayTiepNhan"),
        (DIRECT, [_set("NgayTra", "20260304150000")], "NgayTra", "before NgayKetThucXuLy"),
        (DIRECT, [_set("NgayTra", ...)], "NgayTra", "required for status 10"),
        (DIRECT, [_set("HinhThuc", ...)], "HinhThuc", "required for status 10"),
        (DIRECT, [_set("HinhThuc", 7)], "HinhThuc", "0 trực tiếp"),
        (DIRECT, [_set("HinhThuc", "chim bồ câu")], "HinhThuc", "0 trực tiếp"),
        (DIRECT, [_set("TrangThaiHoSo", 9), _set("NgayKetThucXuLy", ...)], "NgayKetThucXuLy", "required for status 9"),
        (DIRECT, [_set("TrangThaiHoSo", 7), _set("NgayKetThucXuLy", ...)], "NgayRutHoSo", "required for status 7"),
        (DIRECT, [_set("TrangThaiHoSo", 8), _set("NgayKetThucXuLy", ...)], "NgayDungXuLy", "required for status 8"),
        (DIRECT, [_set("TrangThaiHoSo", 8), _set("LyDo", "Nguyễn Văn Giả Định 01 không đến")], "LyDo", "applicant's"),
        (
            DIRECT,
            [_set("TrangThaiHoSo", 3), _set("NgayTiepNhan", ...), _set("NgayKetThucXuLy", ...)],
            "NgayTuChoi",
            "required",
        ),
        (DIRECT, [_set("TrangThaiHoSo", 1)], "KenhThucHien", "must be 2 for status 1"),
        (DIRECT, [_set("DanhSachGiayToKetQua.0.TenGiayTo", "")], "DanhSachGiayToKetQua[0].TenGiayTo", "non-empty text"),
        (FEES, [_set("DanhSachLePhi.0.Gia", -8000)], "DanhSachLePhi[0].Gia", "must not be negative"),
        (FEES, [_set("DanhSachLePhi.0.Gia", "8.000")], "DanhSachLePhi[0].Gia", "whole amount"),
        (FEES, [_set("DanhSachLePhi.0.Gia", 8000.5)], "DanhSachLePhi[0].Gia", "whole amount"),
        (FEES, [_set("DuocThanhToanTrucTuyen", 3)], "DuocThanhToanTrucTuyen", "0, 1 (DVCQG) or 2"),
        (FEES, [_set("NgayThanhToan", "hôm qua")], "NgayThanhToan", "not a date"),
        (
            SUPPLEMENT,
            [_set("DanhSachHoSoBoSung.0.NgayTiepNhanBoSung", "20260316100000")],
            "DanhSachHoSoBoSung[0].NgayTiepNhanBoSung",
            "is before DanhSachHoSoBoSung[0].NgayBoSung",
        ),
        (SUPPLEMENT, [_set("DanhSachHoSoBoSung.0.NgayBoSung", ...)], "DanhSachHoSoBoSung[0].NgayBoSung", "required"),
        (
            SUPPLEMENT,
            [_set("DanhSachHoSoBoSung.0.NoiDungBoSung", ...)],
            "DanhSachHoSoBoSung[0].NoiDungBoSung",
            "non-empty text",
        ),
        (
            SUPPLEMENT,
            [_set("DanhSachHoSoBoSung.0.NoiDungBoSung", "Gọi lại số 0900000011 để bổ sung")],
            "DanhSachHoSoBoSung[0].NoiDungBoSung",
            "applicant's",
        ),
        (
            SUPPLEMENT,
            [_set("DanhSachHoSoBoSung.0.HoSoBoSungId", ...)],
            "DanhSachHoSoBoSung[0].HoSoBoSungId",
            "required",
        ),
        (OPEN, [_set("NgayTiepNhan", "20260326160000")], "NgayTiepNhan", "is before NgayNopHoSo"),
        (OPEN, [_set("TrangThaiHoSo", 1), _set("NgayNopHoSo", ...)], "NgayNopHoSo", "required for status 1"),
        (OPEN, [_set("TaiKhoanDuocXacThucVoiVNeID", 5)], "TaiKhoanDuocXacThucVoiVNeID", "flag 0 or 1"),
    ],
)
def test_record_errors(base: str, mutations: list[Any], field: str, rule: str) -> None:
    record = copy.deepcopy(BY_ID[base])
    for mutate in mutations:
        mutate(record)
    error = rejected(record)
    assert error.field == field
    assert rule in error.rule
    assert str(error).startswith(f"{error.field}: ")
    assert str(error).endswith(f": {error.rule}")
    assert ": " not in error.rule  # the importer groups rejections by the text after the last ": "


def test_duplicated_supplement_ids_are_refused() -> None:
    record = copy.deepcopy(BY_ID["000.04.01.H26-260313-0001"])
    record["DanhSachHoSoBoSung"][1]["HoSoBoSungId"] = record["DanhSachHoSoBoSung"][0]["HoSoBoSungId"]
    assert rejected(record).field == "DanhSachHoSoBoSung[1].HoSoBoSungId"


def test_a_bad_computed_due_date_is_a_record_error() -> None:
    record = copy.deepcopy(BY_ID[DIRECT])
    del record["NgayHenTra"]

    def naive(received_at: datetime, value: float, unit: str) -> datetime:
        return received_at.replace(tzinfo=None)

    def beyond_calendar(received_at: datetime, value: float, unit: str) -> datetime:
        raise ValueError("no working calendar for 2026")

    assert rejected(record, due_at_of=naive).field == "NgayHenTra"
    assert "no working calendar" in rejected(record, due_at_of=beyond_calendar).rule


def test_personal_values_are_redacted_from_errors() -> None:
    record = copy.deepcopy(BY_ID[DIRECT])
    record["MaDoiTuong"] = 1099000001
    error = rejected(record)
    assert "1099000001" not in str(error)


def test_the_shipped_bad_file() -> None:
    outcomes: list[tuple[int, str, str]] = []
    for number, record in iter_records(BAD):
        if isinstance(record, RecordError):
            outcomes.append((number, record.field, "unreadable"))
            continue
        outcomes.append((number, rejected(dict(record), due_at_of=never_called).field, "mapped"))
    assert outcomes == [
        (1, "TrangThaiHoSo", "mapped"),
        (2, "NgayTiepNhan", "mapped"),
        (3, "KenhThucHien", "mapped"),
        (4, "record", "unreadable"),
        (5, "DanhSachLePhi[0].Gia", "mapped"),
        (6, "NgayHenTra", "mapped"),
    ]
    assert count_records(BAD) == 6


# --- privacy of the output ------------------------------------------------------------------------------


def test_no_personal_data_in_any_output() -> None:
    personal = ("ChuHoSo", "MaDoiTuong", "SoDienThoai", "Email", "TrichYeuHoSo")
    for record in RECORDS:
        values = {str(record[key]) for key in personal if record.get(key)}
        values |= {normalize_identifier(value) for value in values}
        facts = mapped(record)
        text = "\n".join(
            json.dumps([fact.source, fact.event_id, fact.unit_code, fact.time.isoformat()], ensure_ascii=False)
            + fact.payload.model_dump_json()
            for fact in facts
        )
        for value in values:
            assert value not in text, (record["MaHoSo"], value)
            assert json.dumps(value, ensure_ascii=True).strip('"') not in text


# --- stable ids ----------------------------------------------------------------------------------------


def test_ids_are_stable_across_imports_and_later_exports() -> None:
    for record in RECORDS:
        assert mapped(record) == mapped(copy.deepcopy(record))
    # the open dossier, exported again once it was finished and delivered
    earlier = BY_ID[OPEN]
    later = copy.deepcopy(earlier)
    later.update(
        TrangThaiHoSo=10,
        NgayKetThucXuLy="20260402100000",
        NgayTra="20260402100500",
        HinhThuc=2,
        DanhSachGiayToKetQua=[{"TenGiayTo": "Văn bản xác nhận thông tin cư trú", "MaKetQua": "KQ-1"}],
    )
    before = {fact.event_id: fact for fact in mapped(earlier)}
    after = {fact.event_id: fact for fact in mapped(later)}
    assert set(before) < set(after)
    assert all(after[event_id] == fact for event_id, fact in before.items())


# --- reading files -------------------------------------------------------------------------------------


def test_csv_and_jsonl_exports_map_to_the_same_facts() -> None:
    csv_records = load(CSV)
    assert len(csv_records) == len(RECORDS)
    for from_csv, from_jsonl in zip(csv_records, RECORDS, strict=True):
        assert mapped(from_csv) == mapped(from_jsonl)
    assert count_records(CSV) == count_records(JSONL) == 30


def test_jsonl_numbering_blank_lines_skip_and_count(tmp_path: Path) -> None:
    lines = [json.dumps(BY_ID[DIRECT]), "", "   ", "[1, 2]", "{not json", json.dumps(BY_ID[FEES])]
    path = tmp_path / "export.ndjson"
    path.write_text("\n".join(lines))  # no final newline: the last line still counts
    assert count_records(path) == 6
    seen = [(n, r if isinstance(r, RecordError) else r["MaHoSo"]) for n, r in iter_records(path)]
    assert [n for n, _ in seen] == [1, 4, 5, 6]
    assert seen[0][1] == DIRECT
    assert isinstance(seen[1][1], RecordError)
    assert seen[1][1].rule == "must be a JSON object"
    assert isinstance(seen[2][1], RecordError)
    assert "not valid JSON" in seen[2][1].rule
    assert [n for n, _ in iter_records(path, skip=4)] == [5, 6]
    assert list(iter_records(path, skip=6)) == []


def test_jsonl_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(BY_ID[DIRECT]).encode() + b"\r\n\xc3\x28\r\n")
    results = list(iter_records(path))
    assert results[0] == (1, BY_ID[DIRECT])
    assert isinstance(results[1][1], RecordError)
    assert results[1][1].rule == "not valid UTF-8"


def test_csv_bom_empty_cells_quoted_newlines_and_bad_json_cells(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "\ufeffMaHoSo,TrangThaiHoSo,GhiChu,TaiLieuNop\n"
        'A-1,2,"dòng một\ndòng hai",\n'
        "\n"
        'A-2,,,"[{""MaThanhPhanHoSo"": ""TP1""}]"\n'
        "A-3,2,,[{\n"
        "A-4,2,,,extra\n",
        encoding="utf-8",
    )
    assert count_records(path) == 5
    results = dict(iter_records(path))
    assert results[1] == {"MaHoSo": "A-1", "TrangThaiHoSo": "2", "GhiChu": "dòng một\ndòng hai"}
    assert 2 not in results  # the blank row is numbered, not yielded
    assert results[3] == {"MaHoSo": "A-2", "TaiLieuNop": [{"MaThanhPhanHoSo": "TP1"}]}
    assert isinstance(results[4], RecordError)
    assert results[4].field == "TaiLieuNop"
    assert isinstance(results[5], RecordError)
    assert "more cells" in results[5].rule
    assert [n for n, _ in iter_records(path, skip=3)] == [4, 5]


def test_unsupported_files_and_headers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported export"):
        iter_records(tmp_path / "export.xlsx")
    with pytest.raises(ValueError, match="skip"):
        iter_records(JSONL, skip=-1)
    repeated = tmp_path / "repeated.csv"
    repeated.write_text("MaHoSo,MaHoSo\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="repeated"):
        list(iter_records(repeated))
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert list(iter_records(empty)) == []
    assert count_records(empty) == 0


# --- nothing but RecordError, whatever the input --------------------------------------------------------

FIELDS = sorted({key for record in RECORDS for key in record} | {"NgayTuChoi", "NgayRutHoSo", "NgayDungXuLy", "LyDo"})
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["", "1", "2", "10", "20260302081200", "2026-13-40", "Ngày làm việc", "-5", "0,5"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), children, max_size=4),
    max_leaves=10,
)


def check_only_record_errors(record: Any) -> None:
    try:
        facts = map_sync_body(record, source=SOURCE, default_unit="00004", due_at_of=calendar_due)
    except RecordError as error:
        str(error)  # printable whatever the value (e.g. an int beyond the str() digit limit)
        return
    assert [fact.time for fact in facts] == sorted(fact.time for fact in facts)
    assert len({fact.event_id for fact in facts}) == len(facts)
    for fact in facts:
        fact.payload.model_dump_json()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), json_values, max_size=12))
def test_arbitrary_dicts_raise_only_record_errors(record: dict[str, Any]) -> None:
    check_only_record_errors(record)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(RECORDS),
    st.lists(st.tuples(st.sampled_from(FIELDS), json_values | st.just(...)), min_size=1, max_size=3),
    st.data(),
)
def test_mutated_examples_raise_only_record_errors(
    base: dict[str, Any], changes: list[tuple[str, Any]], data: st.DataObject
) -> None:
    record = copy.deepcopy(base)
    for key, value in changes:
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    # and one change inside a nested list item, where the deep rules live
    lists = [
        key for key in ("TaiLieuNop", "DanhSachLePhi", "DanhSachHoSoBoSung", "DanhSachGiayToKetQua") if record.get(key)
    ]
    if lists and isinstance(record[lists[0]], list) and isinstance(record[lists[0]][0], dict) and record[lists[0]][0]:
        item = record[lists[0]][0]
        key = data.draw(st.sampled_from(sorted(item)))
        item[key] = data.draw(json_values)
    check_only_record_errors(record)
