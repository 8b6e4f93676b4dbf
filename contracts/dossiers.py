"""v1 events of the dossiers service: the one-stop-shop (Bộ phận Một cửa) dossier lifecycle and PAKN.

Field names follow DOMAIN.md §2.3; the DVCQG synchronisation field each one maps to is named in its
description so inbound adapters can map 1:1. Three rules shape these models:

- the administrative unit (``unitcode``/``provincecode``) travels in the envelope, never in the payload;
  the dossier id (mã hồ sơ) and the resolving agency (``agency_code``) do travel in the payload;
- no personal data: the applicant is a keyed pseudonym (``applicant_ref``), officials are opaque account
  ids, and free-text fields must not carry names or identity numbers;
- raw lifecycle facts and derived facts (``resolved``, ``became_overdue``, ``apology_assessed``) are
  separate events, so indicators can be recomputed from the raw facts when a ruleset changes, while
  consumers that only need the verdict read the derived facts (stamped with the ruleset that made them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, Field, model_validator

from contracts.base import EventPayload, Record
from contracts.topics import DOSSIERS_EVENTS

__all__ = [
    "EVENTS",
    "ApologyAssessed",
    "ApologyIssued",
    "ApplicantType",
    "Channel",
    "CriterionRating",
    "DeliveryChannel",
    "DossierBecameOverdue",
    "DossierComponent",
    "DossierRated",
    "DossierReceived",
    "DossierRefused",
    "DossierResolved",
    "DossierStatus",
    "DossierSubmitted",
    "DossierSyncedToDVCQG",
    "DossierWithdrawn",
    "FeeLine",
    "FeePaid",
    "FeedbackCategory",
    "FeedbackForwarder",
    "FeedbackReceived",
    "FeedbackState",
    "FeedbackStateChanged",
    "FinancialObligationRequested",
    "MaTTHC",
    "OnlinePaymentPlatform",
    "ProcessingStepCompleted",
    "ProcessingStopped",
    "Rating",
    "RatingChannel",
    "ResultDelivered",
    "ResultDocument",
    "ResultIssued",
    "StatutoryTime",
    "SupplementReceived",
    "SupplementRequested",
    "SupplementStage",
    "TimeUnit",
    "TimelinessClass",
]

# --- shared field types --------------------------------------------------------------------------------

#: ids are opaque strings; 200 is the envelope's ``subject`` limit, and a dossier id is a stream id
_Id = Annotated[str, Field(min_length=1, max_length=200)]
_Text = Annotated[str, Field(min_length=1)]
#: national procedure code of the CSDL QG về TTHC, e.g. 1.001776, 2.000635 (every source code has this shape)
MaTTHC = Annotated[str, Field(pattern=r"^\d\.\d{6}$", examples=["1.001776", "2.000635"])]
#: the applicant pseudonym is an HMAC-SHA256 in lowercase hex: the fixed shape makes it impossible to put a
#: raw citizen identity number (12 digits) or a name into the field by mistake
_Pseudonym = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_Hours = Annotated[float, Field(ge=0)]


# --- code lists ----------------------------------------------------------------------------------------


class Channel(StrEnum):
    """How the dossier was submitted (KenhThucHien): 1 trực tiếp, 2 trực tuyến, 3 bưu chính công ích."""

    DIRECT = "direct"
    ONLINE = "online"
    POSTAL = "postal"

    @property
    def dvcqg_code(self) -> int:
        """The KenhThucHien code DVCQG uses for this channel."""
        return _CHANNEL_CODES[self]

    @classmethod
    def from_dvcqg(cls, code: int | None) -> Channel:
        """The channel of a KenhThucHien code; a missing code counts as direct (DOMAIN §10, F766 3.3)."""
        if code is None:
            return cls.DIRECT
        for channel, known in _CHANNEL_CODES.items():
            if known == code:
                return channel
        msg = f"unknown KenhThucHien code {code!r}"
        raise ValueError(msg)


_CHANNEL_CODES = {Channel.DIRECT: 1, Channel.ONLINE: 2, Channel.POSTAL: 3}


class DossierStatus(StrEnum):
    """The 10 national dossier statuses of the DVCQG synchronisation (TrangThaiHoSo 1-10)."""

    SUBMITTED = "submitted"
    RECEIVED = "received"
    NOT_RECEIVED = "not_received"
    PROCESSING = "processing"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    FINANCIAL_OBLIGATION = "financial_obligation"
    WITHDRAWN = "withdrawn"
    STOPPED = "stopped"
    PROCESSED = "processed"
    RESULT_DELIVERED = "result_delivered"

    @property
    def dvcqg_code(self) -> int:
        """The TrangThaiHoSo code (1-10) of this status."""
        return _STATUS_CODES[self]

    @classmethod
    def from_dvcqg(cls, code: int) -> DossierStatus:
        """The status of a TrangThaiHoSo code (1-10)."""
        for status, known in _STATUS_CODES.items():
            if known == code:
                return status
        msg = f"unknown TrangThaiHoSo code {code!r}"
        raise ValueError(msg)


# explicit codes (not the declaration order) so reordering the enum can never renumber the wire codes
_STATUS_CODES = {
    DossierStatus.SUBMITTED: 1,  # Mới đăng ký
    DossierStatus.RECEIVED: 2,  # Được tiếp nhận
    DossierStatus.NOT_RECEIVED: 3,  # Không được tiếp nhận
    DossierStatus.PROCESSING: 4,  # Đang xử lý
    DossierStatus.SUPPLEMENT_REQUESTED: 5,  # Yêu cầu bổ sung giấy tờ
    DossierStatus.FINANCIAL_OBLIGATION: 6,  # Yêu cầu thực hiện nghĩa vụ tài chính
    DossierStatus.WITHDRAWN: 7,  # Công dân yêu cầu rút hồ sơ
    DossierStatus.STOPPED: 8,  # Dừng xử lý
    DossierStatus.PROCESSED: 9,  # Đã xử lý xong
    DossierStatus.RESULT_DELIVERED: 10,  # Đã trả kết quả
}


class TimeUnit(StrEnum):
    """Unit of a statutory time limit (DonViTinh): giờ, ngày làm việc, ngày (calendar), tháng."""

    WORKING_HOURS = "working_hours"  # Giờ (làm việc)
    WORKING_DAYS = "working_days"  # Ngày làm việc
    CALENDAR_DAYS = "calendar_days"  # Ngày
    MONTHS = "months"  # Tháng


class ApplicantType(StrEnum):
    """Kind of applicant (LoaiDoiTuong): 1 cá nhân, 2 tổ chức."""

    INDIVIDUAL = "individual"
    ORGANISATION = "organisation"


class SupplementStage(StrEnum):
    """When a supplement was requested: at reception (clock not started) or during processing (paused)."""

    RECEPTION = "reception"
    PROCESSING = "processing"


class OnlinePaymentPlatform(StrEnum):
    """Where an online payment was made (DuocThanhToanTrucTuyen): 1 DVCQG, 2 ministry/provincial gateway."""

    DVCQG = "dvcqg"
    LOCAL_GATEWAY = "local_gateway"


class DeliveryChannel(StrEnum):
    """How the result was handed over (HinhThuc): trực tiếp, bưu chính, điện tử."""

    IN_PERSON = "in_person"
    POSTAL = "postal"
    ELECTRONIC = "electronic"


class Rating(StrEnum):
    """A citizen's evaluation: the satisfaction scale (Rất hài lòng / Hài lòng / Không hài lòng) or like/dislike."""

    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    DISSATISFIED = "dissatisfied"
    LIKE = "like"
    DISLIKE = "dislike"


class RatingChannel(StrEnum):
    """Where a per-dossier rating was given."""

    DVCQG = "dvcqg"  # Cổng Dịch vụ công quốc gia
    PROVINCIAL_PORTAL = "provincial_portal"  # the province's DVC portal / one-stop-shop system
    KIOSK = "kiosk"  # evaluation device at the service point


class FeedbackCategory(StrEnum):
    """PAKN classification used by 766 indicator 5.1."""

    REGULATION = "regulation"  # quy định, chính sách, thủ tục hành chính
    OFFICIAL_CONDUCT = "official_conduct"  # hành vi của cán bộ, công chức


class FeedbackForwarder(StrEnum):
    """Who brought a PAKN to the agency; the 766 5.2 clocks start at the forwarding."""

    VPCP = "vpcp"  # forwarded by the Government Office (VPCP)
    OTHER_AGENCY = "other_agency"  # forwarded by another agency
    DIRECT = "direct"  # sent to the agency directly


class FeedbackState(StrEnum):
    """Handling states of a PAKN, as 766 indicator 5.2 times them."""

    AWAITING_RECEIPT = "awaiting_receipt"  # chờ tiếp nhận
    REJECTED = "rejected"  # từ chối tiếp nhận
    SUPPLEMENT_REQUESTED = "supplement_requested"  # yêu cầu bổ sung
    PROCESSING = "processing"  # đang xử lý
    AWAITING_PUBLICATION = "awaiting_publication"  # chờ công khai (handled)
    PUBLISHED = "published"  # đã công khai


class TimelinessClass(StrEnum):
    """Report 06 class of a finished dossier (date granularity, DOMAIN §3.3a)."""

    EARLY = "early"  # trước hạn
    ON_TIME = "on_time"  # đúng hạn
    LATE = "late"  # quá hạn


# --- nested records ------------------------------------------------------------------------------------


class StatutoryTime(Record):
    """A statutory processing time limit (ThoiGianGiaiQuyet + DonViTinh) of the procedure version."""

    value: float = Field(gt=0, description="ThoiGianGiaiQuyet — the limit in ``unit`` (may be fractional)")
    unit: TimeUnit = Field(description="DonViTinh — unit of the limit")


class DossierComponent(Record):
    """One component (thành phần hồ sơ) of a received dossier, with the flags Decision 766 group 4 reads."""

    component_code: _Id = Field(description="MaThanhPhanHoSo — code of the component in the procedure")
    digitized: bool = Field(
        description="TaiLieuNop[].DuocSoHoa — the component was digitised (a file is attached); 766 4.2"
    )
    reused_from_store: bool = Field(
        description="TaiLieuNop[].DuocLayTuKhoDMQG — taken from the applicant's data store on DVCQG; 766 4.4"
    )
    reused_digital_data: bool = Field(
        description="HoSoCoThanhPhanSoHoa — reuses digitised data already held by an agency; 766 4.3"
    )


class FeeLine(Record):
    """One fee or charge line (DanhSachLePhi[])."""

    fee_code: str | None = Field(default=None, description="MaPhiLePhi — code of the fee, when the source has one")
    name: _Text = Field(description="TenPhiLePhi — name of the fee or charge")
    amount_vnd: int = Field(ge=0, description="Gia — amount in VND (a 0 line is synced but is not a fee)")
    fee_kind: str | None = Field(
        default=None, description="LoaiPhiLePhi — fee kind code as sent by the source (phí / lệ phí)"
    )
    collection_method: str | None = Field(
        default=None, description="HinhThucThu — collection method as sent by the source"
    )


class ResultDocument(Record):
    """One result document (DanhSachGiayToKetQua[])."""

    name: _Text = Field(description="TenGiayTo — name of the result document, e.g. 'Trích lục khai sinh'")
    result_code: str | None = Field(default=None, description="MaKetQua — code of the electronic result")
    electronic: bool = Field(
        description="An electronic result exists (MaKetQua and DuongDanTepTinKetQua both set); 766 3.3, 4.1"
    )
    digitally_signed: bool = Field(description="The electronic result carries a digital signature (ký số)")
    synced_to_citizen_store: bool = Field(
        description="The result link was synced to the applicant's data store on DVCQG; 766 4.4"
    )


class CriterionRating(Record):
    """The rating of one criterion of a per-dossier evaluation."""

    criterion_id: _Id = Field(description="Id of the evaluation criterion on the rating platform")
    rating: Rating = Field(description="The rating given for this criterion")


# --- events --------------------------------------------------------------------------------------------


class _DossierFact(EventPayload):
    """Fields every event of a dossier stream carries (the stream id is the dossier id)."""

    producer = "dossiers"
    topic = DOSSIERS_EVENTS

    dossier_id: _Id = Field(description="MaHoSo — the dossier code (mã hồ sơ); also the stream id")
    agency_code: _Id = Field(description="MADONVI — DVCQG code of the agency resolving the dossier")
    actor_id: str | None = Field(
        default=None,
        description="Opaque account id of the official who performed the action; null for the applicant or "
        "an automated system",
    )


class DossierSubmitted(_DossierFact):
    """A dossier was submitted online and awaits acceptance (status 1 Mới đăng ký)."""

    event_type = "vn.cchc.dossier.submitted"
    schema_version = 1

    channel: Channel = Field(description="KenhThucHien — submission channel")
    ma_tthc: MaTTHC = Field(description="MaTTHC — national code of the administrative procedure")
    procedure_version: _Id = Field(
        description="Version of the procedure in force at submission (e.g. the publishing decision number)"
    )
    applicant_type: ApplicantType = Field(description="LoaiDoiTuong — individual or organisation")
    applicant_ref: _Pseudonym = Field(
        description="Keyed pseudonym of the applicant (HMAC-SHA256, hex); never a name or identity number"
    )
    submitted_at: AwareDatetime = Field(description="NgayNopHoSo — when the applicant submitted")
    submitted_via_dvcqg: bool = Field(description="Submitted through the national portal (Cổng DVCQG); 766 3.2")
    vneid_authenticated: bool = Field(
        description="TaiKhoanDuocXacThucVoiVNeID — the account was authenticated with VNeID; 766 4.5"
    )


class DossierReceived(_DossierFact):
    """A dossier was accepted (Mẫu 01 Giấy tiếp nhận hồ sơ và hẹn trả kết quả); the clock starts.

    Direct and postal dossiers start here, so this event repeats the submission facts.
    """

    event_type = "vn.cchc.dossier.received"
    schema_version = 1

    channel: Channel = Field(description="KenhThucHien — submission channel")
    ma_tthc: MaTTHC = Field(description="MaTTHC — national code of the administrative procedure")
    procedure_version: _Id = Field(
        description="Version of the procedure in force at receipt (e.g. the publishing decision number)"
    )
    applicant_type: ApplicantType = Field(description="LoaiDoiTuong — individual or organisation")
    applicant_ref: _Pseudonym = Field(
        description="Keyed pseudonym of the applicant (HMAC-SHA256, hex); never a name or identity number"
    )
    received_at: AwareDatetime = Field(description="NgayTiepNhan — when the dossier was received")
    due_at: AwareDatetime = Field(
        description="NgayHenTra — the due date on Mẫu 01; the original due date, never rewritten later"
    )
    statutory_time: StatutoryTime = Field(description="Statutory time limit of the procedure version")
    components: tuple[DossierComponent, ...] = Field(description="TaiLieuNop — the dossier's components")

    @model_validator(mode="after")
    def _due_after_receipt(self) -> Self:
        # a due date before receipt is always a data error upstream; refusing it here keeps it out of
        # every timeliness indicator instead of counting the dossier as late
        if self.due_at < self.received_at:
            msg = "due_at is before received_at"
            raise ValueError(msg)
        return self


class DossierRefused(_DossierFact):
    """Reception was refused (Mẫu 03 Phiếu từ chối tiếp nhận; status 3); not a received dossier."""

    event_type = "vn.cchc.dossier.refused"
    schema_version = 1

    refused_at: AwareDatetime = Field(description="NgayTuChoi — when reception was refused")
    reason: _Text = Field(description="Reason given on Mẫu 03 (no personal data)")


class SupplementRequested(_DossierFact):
    """The applicant was asked to supplement the dossier (Mẫu 02 Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ)."""

    event_type = "vn.cchc.dossier.supplement_requested"
    schema_version = 1

    supplement_id: _Id = Field(description="HoSoBoSungId — id pairing this request with its completion")
    requested_at: AwareDatetime = Field(description="NgayYeuCauBoSung — when the supplement was requested")
    stage: SupplementStage = Field(description="At reception (clock not started) or during processing (clock paused)")
    content: _Text = Field(description="NoiDungBoSung — what must be supplemented (no personal data)")
    citizen_deadline_at: AwareDatetime | None = Field(
        default=None, description="ThoiHanBoSung — deadline for the applicant to supplement, if set"
    )


class SupplementReceived(_DossierFact):
    """The requested supplement was received; the clock resumes (or restarts, per the versioned policy)."""

    event_type = "vn.cchc.dossier.supplement_received"
    schema_version = 1

    supplement_id: _Id = Field(description="HoSoBoSungId — the request this completes")
    received_at: AwareDatetime = Field(description="NgayTiepNhanBoSung — when the supplement was received")
    previous_due_at: AwareDatetime | None = Field(
        default=None, description="NgayHenTraTruoc — due date before the supplement, as the source states it"
    )
    new_due_at: AwareDatetime | None = Field(
        default=None, description="NgayHenTraMoi — due date recomputed by the source system, if any"
    )


class ProcessingStepCompleted(_DossierFact):
    """One processing step was completed and handed on (Phiếu kiểm soát quá trình giải quyết hồ sơ)."""

    event_type = "vn.cchc.dossier.processing_step_completed"
    schema_version = 1

    step: _Text = Field(description="Name or code of the step in the internal procedure (NoiDungXuLy)")
    department: str | None = Field(default=None, description="PhongBanXuLy — department that handled the step")
    from_actor_id: str | None = Field(default=None, description="Opaque account id of the official handing over")
    to_actor_id: str | None = Field(default=None, description="Opaque account id of the official receiving it")
    started_at: AwareDatetime | None = Field(default=None, description="NgayBatDau — when the step started")
    step_due_at: AwareDatetime | None = Field(
        default=None, description="NgayKetThucTheoQuyDinh — when the step was due"
    )
    completed_at: AwareDatetime = Field(description="ThoiDiemXuLy — when the step was completed")


class FinancialObligationRequested(_DossierFact):
    """The applicant was asked to pay fees or taxes (status 6)."""

    event_type = "vn.cchc.dossier.financial_obligation_requested"
    schema_version = 1

    requested_at: AwareDatetime = Field(description="When the payment was requested")
    amount_vnd: int = Field(ge=0, description="Total amount requested, in VND")
    fee_lines: tuple[FeeLine, ...] = Field(description="DanhSachLePhi — the fee lines requested")


class FeePaid(_DossierFact):
    """Fees of the dossier were paid."""

    event_type = "vn.cchc.dossier.fee_paid"
    schema_version = 1

    paid_at: AwareDatetime = Field(description="When the payment was made")
    amount_vnd: int = Field(ge=0, description="Total amount paid, in VND")
    fee_lines: tuple[FeeLine, ...] = Field(description="DanhSachLePhi — the fee lines paid")
    paid_online: OnlinePaymentPlatform | None = Field(
        default=None,
        description="DuocThanhToanTrucTuyen — the online platform used (1 DVCQG, 2 local gateway); null when "
        "paid offline; 766 3.5b, 3.6",
    )


class ApologyIssued(_DossierFact):
    """An apology with a new due date was issued (Mẫu 04; since 2025 'Văn bản xin lỗi và đề nghị gia hạn')."""

    event_type = "vn.cchc.dossier.apology_issued"
    schema_version = 1

    issued_at: AwareDatetime = Field(description="When the apology was issued")
    reason: _Text = Field(description="Reason for the delay (no personal data)")
    new_due_at: AwareDatetime = Field(
        description="Rescheduled due date; the original due date stays the one timeliness is judged on"
    )
    sequence_no: int = Field(ge=1, description="1 for the first apology of this dossier, 2 for the second, ...")


class ProcessingStopped(_DossierFact):
    """Processing was stopped (Mẫu 05 Thông báo dừng giải quyết hồ sơ, 2025; status 8)."""

    event_type = "vn.cchc.dossier.processing_stopped"
    schema_version = 1

    stopped_at: AwareDatetime = Field(description="When processing was stopped")
    reason: _Text = Field(description="Reason for stopping (no personal data)")


class DossierWithdrawn(_DossierFact):
    """The dossier was withdrawn at the applicant's request (status 7 Công dân yêu cầu rút hồ sơ)."""

    event_type = "vn.cchc.dossier.withdrawn"
    schema_version = 1

    withdrawn_at: AwareDatetime = Field(description="When the withdrawal was recorded")


class ResultIssued(_DossierFact):
    """Processing finished and the result is ready (status 9 Đã xử lý xong)."""

    event_type = "vn.cchc.dossier.result_issued"
    schema_version = 1

    finished_at: AwareDatetime = Field(description="NgayKetThucXuLy — when processing finished")
    result_docs: tuple[ResultDocument, ...] = Field(description="DanhSachGiayToKetQua — the result documents")


class ResultDelivered(_DossierFact):
    """The result was handed over to the applicant (status 10 Đã trả kết quả)."""

    event_type = "vn.cchc.dossier.result_delivered"
    schema_version = 1

    delivered_at: AwareDatetime = Field(description="NgayTra — when the result was handed over")
    delivery_channel: DeliveryChannel = Field(description="HinhThuc — how the result was handed over")


class DossierSyncedToDVCQG(_DossierFact):
    """The dossier's state was synchronised to the national portal (đồng bộ hồ sơ); 766 1.4."""

    event_type = "vn.cchc.dossier.synced_to_dvcqg"
    schema_version = 1

    synced_at: AwareDatetime = Field(description="When DVCQG acknowledged the synchronisation")
    status_synced: DossierStatus = Field(description="TrangThaiHoSo — the status that was synchronised")


class DossierRated(_DossierFact):
    """The applicant rated the handling of the dossier (per-dossier evaluation); 766 5.4."""

    event_type = "vn.cchc.dossier.rated"
    schema_version = 1

    rated_at: AwareDatetime = Field(description="When the rating was given")
    rated_via: RatingChannel = Field(description="Platform the rating was given on")
    rating: Rating = Field(description="Overall rating")
    criteria: tuple[CriterionRating, ...] = Field(default=(), description="Per-criterion ratings, if any")


class DossierResolved(_DossierFact):
    """Derived: the dossier reached an end state; its timeliness by both definitions of DOMAIN §3.3.

    Emitted once per dossier by the dossiers service (again, with the same stream, if a late event or a
    new ruleset changes the verdict; consumers keep the latest per dossier).
    """

    event_type = "vn.cchc.dossier.resolved"
    schema_version = 1

    ma_tthc: MaTTHC = Field(description="MaTTHC — national code of the administrative procedure")
    channel: Channel = Field(description="KenhThucHien — submission channel")
    received_at: AwareDatetime = Field(description="NgayTiepNhan — when the dossier was received")
    due_at: AwareDatetime = Field(description="NgayHenTra — the original due date (apologies do not move it)")
    resolved_at: AwareDatetime = Field(
        description="End time per 766 2.1: time of status 9, else 10, else 8/3, else 7 (before subtracting "
        "supplement time)"
    )
    final_status: DossierStatus = Field(description="The end status the end time was taken from")
    report06_class: TimelinessClass | None = Field(
        default=None,
        description="Report 06 class (trước hạn / đúng hạn / quá hạn) for statuses 9 and 10; null for withdrawn, "
        "stopped or refused dossiers, which report 06 counts separately",
    )
    on_time_766: bool = Field(
        description="Decision 766 indicator 2.1: end time minus supplement time is at or before the due date, "
        "and at most one supplement was requested during processing"
    )
    supplement_working_hours: _Hours = Field(
        description="Working hours the dossier waited for the applicant's supplements (subtracted by 766 2.1)"
    )
    supplement_requests: int = Field(
        ge=0, description="Number of supplement requests during processing (more than one makes it late)"
    )
    processing_working_hours: _Hours = Field(
        description="Working hours from receipt to end time, supplement time excluded (766 2.2 input)"
    )
    ruleset_version: _Id = Field(
        description="Version of the timeliness ruleset (calendar, supplement policy) that produced this verdict"
    )
    # the dossier's service facts as known at resolution (DOMAIN §10), so indicator consumers need not fold
    # the raw stream; null = not known (a verdict made before these fields existed, or no such fact)
    submitted_via_dvcqg: bool | None = Field(
        default=None, description="Submitted through the national portal (Cổng DVCQG); 766 3.2"
    )
    vneid_authenticated: bool | None = Field(
        default=None, description="The applicant's account was authenticated with VNeID; 766 4.5"
    )
    fee_vnd: int | None = Field(
        default=None, ge=0, description="Fees requested or paid, in VND (0 = a dossier without fees); 766 3.6"
    )
    paid_online: OnlinePaymentPlatform | None = Field(
        default=None, description="Platform the fees were paid on online, null if not paid online; 766 3.5b, 3.6"
    )
    components: int | None = Field(default=None, ge=0, description="Components (thành phần) received; 766 4.2")
    components_digitized: int | None = Field(
        default=None, ge=0, description="Components with a digitised file (DuocSoHoa); 766 4.2"
    )
    components_reused: int | None = Field(
        default=None,
        ge=0,
        description="Components reused from digitised data or taken from the DVCQG store; 766 4.3, 4.4",
    )
    electronic_result: bool | None = Field(
        default=None,
        description="An electronic result exists (MaKetQua + file link); null when no result; 766 3.3, 4.1",
    )


class DossierBecameOverdue(_DossierFact):
    """Derived: the original due date passed while the dossier was still open (đang xử lý quá hạn)."""

    event_type = "vn.cchc.dossier.became_overdue"
    schema_version = 1

    ma_tthc: MaTTHC = Field(description="MaTTHC — national code of the administrative procedure")
    due_at: AwareDatetime = Field(description="NgayHenTra — the original due date that passed")
    detected_at: AwareDatetime = Field(description="When the dossiers service noticed the overdue state")
    status: DossierStatus = Field(description="Status of the dossier when it became overdue")
    ruleset_version: _Id = Field(description="Version of the timeliness ruleset that produced this verdict")


class ApologyAssessed(_DossierFact):
    """Derived: apology compliance of a late dossier (DOMAIN §3.6), all variants kept as booleans."""

    event_type = "vn.cchc.dossier.apology_assessed"
    schema_version = 1

    original_due_at: AwareDatetime = Field(description="NgayHenTra — the original due date")
    resolved_at: AwareDatetime | None = Field(
        default=None, description="End time of the dossier, null while it is still open"
    )
    apologies_issued: int = Field(ge=0, description="Number of apologies (Mẫu 04) issued for the dossier")
    issued: bool = Field(description="At least one apology was issued")
    before_original_due: bool = Field(description="The first apology was issued before the original due date")
    at_least_one_working_day_before: bool = Field(
        description="The first apology was issued at least one working day before the original due date"
    )
    single_reschedule: bool = Field(description="The due date was rescheduled exactly once")
    result_by_rescheduled_due: bool = Field(description="The dossier was finished by the (last) rescheduled due date")
    assessed_at: AwareDatetime = Field(description="When the assessment was made")
    ruleset_version: _Id = Field(description="Version of the apology ruleset that produced this assessment")


class FeedbackReceived(EventPayload):
    """A PAKN (phản ánh, kiến nghị) reached the agency; the stream id is the PAKN id."""

    event_type = "vn.cchc.feedback.received"
    schema_version = 1
    producer = "dossiers"
    topic = DOSSIERS_EVENTS

    feedback_id: _Id = Field(description="Id of the PAKN on its platform (pakn_id); also the stream id")
    agency_code: _Id = Field(description="MADONVI — DVCQG code of the agency that must handle the PAKN")
    category: FeedbackCategory = Field(description="Classification of the PAKN (766 5.1)")
    forwarded_by: FeedbackForwarder = Field(description="Who brought the PAKN to the agency")
    received_at: AwareDatetime = Field(description="When the PAKN reached the agency (start of the 766 5.2 clock)")
    dossier_id: str | None = Field(default=None, description="MaHoSo of the dossier the PAKN is about, if any")
    ma_tthc: MaTTHC | None = Field(default=None, description="MaTTHC of the procedure the PAKN is about, if any")
    follows_up_feedback_id: str | None = Field(
        default=None, description="The earlier PAKN whose handling result this one complains about (766 5.3)"
    )


class FeedbackStateChanged(EventPayload):
    """A PAKN moved to a new handling state."""

    event_type = "vn.cchc.feedback.state_changed"
    schema_version = 1
    producer = "dossiers"
    topic = DOSSIERS_EVENTS

    feedback_id: _Id = Field(description="Id of the PAKN (pakn_id); also the stream id")
    agency_code: _Id = Field(description="MADONVI — DVCQG code of the agency handling the PAKN")
    state: FeedbackState = Field(description="The new handling state")
    changed_at: AwareDatetime = Field(description="When the PAKN entered the new state")
    likes: int | None = Field(default=None, ge=0, description="Citizen likes on the published answer, if known")
    dislikes: int | None = Field(
        default=None, ge=0, description="Citizen dislikes on the published answer, if known (766 5.3)"
    )


EVENTS: tuple[type[EventPayload], ...] = (
    DossierSubmitted,
    DossierReceived,
    DossierRefused,
    SupplementRequested,
    SupplementReceived,
    ProcessingStepCompleted,
    FinancialObligationRequested,
    FeePaid,
    ApologyIssued,
    ProcessingStopped,
    DossierWithdrawn,
    ResultIssued,
    ResultDelivered,
    DossierSyncedToDVCQG,
    DossierRated,
    DossierResolved,
    DossierBecameOverdue,
    ApologyAssessed,
    FeedbackReceived,
    FeedbackStateChanged,
)
