"""v1 events of the surveys service: one completed questionnaire (SIPAS, PAR survey parts, own surveys).

DOMAIN.md §7.5. A response carries respondent *bands* only (type, age band, sex, ethnicity), never an
identity: survey answers are opinions about the authorities, and anonymity is what makes them honest.
Rejected responses are not events; they go to the inbound consumer's dead-letter topic.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, Field, StrictInt, StrictStr, model_validator

from contracts.base import EventPayload, Record
from contracts.dossiers import MaTTHC
from contracts.topics import SURVEYS_EVENTS

__all__ = [
    "EVENTS",
    "Answer",
    "AnswerValue",
    "RespondentProfile",
    "RespondentSex",
    "RespondentType",
    "SurveyChannel",
    "SurveyResponseSubmitted",
]

_Id = Annotated[str, Field(min_length=1, max_length=200)]

#: An answer is a scale point / code (integer), a free text or category code (string), or several
#: chosen options (list of strings, e.g. "which aspects should improve"). Strict types keep the arms
#: disjoint on the wire: "3" stays text and never silently becomes the scale point 3.
AnswerValue = Annotated[
    StrictInt | Annotated[StrictStr, Field(min_length=1)] | Annotated[tuple[StrictStr, ...], Field(min_length=1)],
    Field(description="The answer: an integer (scale point or code), a string, or a non-empty list of options"),
]


class SurveyChannel(StrEnum):
    """How the questionnaire was administered."""

    FACE_TO_FACE = "face_to_face"
    PHONE = "phone"
    ONLINE = "online"
    KIOSK = "kiosk"
    PAPER = "paper"
    QR = "qr"  # QR code printed on Mẫu 01, scanned by the dossier holder
    SMS = "sms"  # link sent by SMS/Zalo after the result


class RespondentType(StrEnum):
    """Who answered."""

    CITIZEN = "citizen"
    ORGANISATION = "organisation"
    OFFICIAL = "official"


class RespondentSex(StrEnum):
    """Respondent's sex as recorded by the questionnaire (giới tính)."""

    MALE = "male"
    FEMALE = "female"


class RespondentProfile(Record):
    """Banded respondent profile, used for weighting and breakdowns; nothing that identifies a person."""

    type: RespondentType = Field(description="Citizen, organisation or official")
    age_band: str = Field(
        pattern=r"^\d{1,3}(-\d{1,3}|\+)$",
        description="Age band as defined by the instrument, e.g. '18-29' or '60+'; never an exact age",
        examples=["18-29", "60+"],
    )
    sex: RespondentSex = Field(description="Sex (giới tính)")
    ethnicity: str | None = Field(default=None, description="Ethnic group (dân tộc), e.g. 'Kinh', if asked")


class Answer(Record):
    """The answer to one questionnaire item."""

    item_id: _Id = Field(description="Id of the item in the instrument version")
    value: AnswerValue


class SurveyResponseSubmitted(EventPayload):
    """A respondent submitted a completed questionnaire; the stream id is the response id."""

    event_type = "vn.cchc.survey.response_submitted"
    schema_version = 1
    producer = "surveys"
    topic = SURVEYS_EVENTS

    response_id: _Id = Field(description="Id of this response; also the stream id")
    survey_id: _Id = Field(description="The survey round (campaign) the response belongs to")
    instrument_id: _Id = Field(description="The questionnaire, e.g. 'sipas-service'")
    instrument_version: _Id = Field(
        description="Version of the questionnaire and its method, e.g. 'QĐ1001-2023'", examples=["QĐ1001-2023"]
    )
    ma_tthc: MaTTHC | None = Field(
        default=None, description="MaTTHC of the procedure the respondent used, for service surveys"
    )
    policy_group: str | None = Field(
        default=None, description="Policy group surveyed (e.g. 'giáo dục phổ thông'), for policy surveys"
    )
    channel: SurveyChannel = Field(description="How the questionnaire was administered")
    respondent: RespondentProfile = Field(description="Banded respondent profile")
    answers: tuple[Answer, ...] = Field(min_length=1, description="The answers, one per answered item")
    weight: float | None = Field(
        default=None, gt=0, description="Design or post-stratification weight, when the method defines one"
    )
    linked_dossier_id: str | None = Field(
        default=None, description="MaHoSo of the dossier the response is about (QR on Mẫu 01, link after result)"
    )
    submitted_at: AwareDatetime = Field(description="When the respondent submitted the questionnaire")

    @model_validator(mode="after")
    def _one_answer_per_item(self) -> Self:
        # two answers to one item make every per-item ratio ambiguous; the producer must resolve it
        item_ids = [answer.item_id for answer in self.answers]
        if len(item_ids) != len(set(item_ids)):
            msg = "answers contain the same item_id more than once"
            raise ValueError(msg)
        return self


EVENTS: tuple[type[EventPayload], ...] = (SurveyResponseSubmitted,)
