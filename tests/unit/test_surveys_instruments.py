"""The shipped instruments, one by one: a hand-written valid answer set passes and is normalised; unknown
items, values out of scale, missing required items and bad profiles are refused with the precise reason."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.surveys.catalog import InstrumentCatalog, InstrumentError, load_catalog
from services.surveys.domain import Instrument, Valid, Violation, validate_answers

CATALOG = load_catalog()
SIPAS_2017 = CATALOG.get("sipas-service", "QĐ2640-2017")
SIPAS_2023 = CATALOG.get("sipas-service", "QĐ1001-2023")
CITIZEN = CATALOG.get("citizen-experience", "chiso-2025.1")

PROFILE = {"type": "citizen", "age_band": "30-39", "sex": "female"}

# every judgement item agreed (1), satisfaction on the 5-level scale, two expectations; written out by hand
SIPAS_2017_ANSWERS = {
    "access.waiting_area_sufficient": 1,
    "access.equipment_sufficient": 1,
    "access.equipment_modern": 2,
    "access.equipment_easy": 1,
    "access.satisfaction": 4,
    "procedure.posted_fully": 1,
    "procedure.posted_accurately": 1,
    "procedure.components_lawful": 1,
    "procedure.fees_lawful": 1,
    "procedure.time_limit_lawful": 2,
    "procedure.satisfaction": 3,
    "civil_servant.polite": 1,
    "civil_servant.listens": 1,
    "civil_servant.answers_fully": 1,
    "civil_servant.guides_thoroughly": 1,
    "civil_servant.guides_clearly": 1,
    "civil_servant.follows_rules": 1,
    "civil_servant.satisfaction": 5,
    "result.lawful": 1,
    "result.information_complete": 1,
    "result.information_accurate": 1,
    "result.satisfaction": 5,
    "overall.satisfaction": 4,
    "expectations": ["better_online_services", "staff_attitude"],
}
SIPAS_2023_ANSWERS = {
    **SIPAS_2017_ANSWERS,
    "integrity.harassed": "no",
    "integrity.bribe_asked": "no",
}
CITIZEN_ANSWERS = {
    "procedures.visits": "2",
    "procedures.information_clear": "yes",
    "procedures.result_as_promised": "yes",
    "procedures.informal_payment_asked": "no",
    "procedures.satisfaction": 4,
    "services.health": 3,
    "egov.portal_used": "no",
}

CASES = [
    pytest.param(SIPAS_2017, SIPAS_2017_ANSWERS, id="sipas-2017"),
    pytest.param(SIPAS_2023, SIPAS_2023_ANSWERS, id="sipas-2023"),
    pytest.param(CITIZEN, CITIZEN_ANSWERS, id="citizen-proxy"),
]


def rules(result: Valid | list[Violation]) -> dict[str, str]:
    assert isinstance(result, list), "expected a refusal"
    return {v.field: v.rule for v in result}


def test_the_three_national_instruments_are_shipped_with_their_periods() -> None:
    assert [i.key for i in CATALOG.all()] == [
        "citizen-experience@chiso-2025.1",
        "sipas-service@QĐ2640-2017",
        "sipas-service@QĐ1001-2023",
    ]
    assert CATALOG.in_force("sipas-service", date(2020, 5, 1)) is SIPAS_2017
    assert CATALOG.in_force("sipas-service", date(2026, 5, 1)) is SIPAS_2023
    assert CATALOG.in_force("sipas-service", date(2022, 6, 1)) is None  # the 2022 method was not retrieved
    assert CATALOG.in_force("citizen-experience", date(2025, 6, 30)) is None


def test_the_2017_method_has_the_five_elements_of_domain_7_2_and_marks_its_items_unconfirmed() -> None:
    assert SIPAS_2017 is not None
    assert [e.id for e in SIPAS_2017.elements][:5] == ["access", "procedure", "civil_servant", "result", "feedback"]
    judgements = {e.id: sum(i.role == "judgement" for i in e.items) for e in SIPAS_2017.elements}
    assert judgements == {"access": 4, "procedure": 5, "civil_servant": 6, "result": 3, "feedback": 4, "overall": 0}
    assert SIPAS_2017.status == "unconfirmed"
    assert {i.confidence.value for i in SIPAS_2017.items()} == {"U"}


def test_the_2023_structure_has_the_nine_policy_groups_and_is_unconfirmed() -> None:
    assert SIPAS_2023 is not None
    assert len(SIPAS_2023.policy_groups) == 9
    assert SIPAS_2023.status == "unconfirmed"


def test_the_citizen_questionnaire_is_a_labelled_proxy_never_called_papi() -> None:
    assert CITIZEN is not None
    assert "proxy" in CITIZEN.results_label.lower()
    assert "not PAPI" in CITIZEN.results_label
    dimensions = {i.proxy_for.dimension for i in CITIZEN.items() if i.proxy_for is not None}
    assert dimensions == {5, 6, 8}
    assert all(i.proxy_for is not None for i in CITIZEN.items())
    assert "informal_payment" in " ".join(i.id for i in CITIZEN.items())


@pytest.mark.parametrize(("instrument", "answers"), CASES)
def test_a_valid_answer_set_is_accepted_and_normalised_in_questionnaire_order(instrument, answers) -> None:
    shuffled = dict(reversed(list(answers.items())))
    result = validate_answers(instrument, shuffled, PROFILE)
    assert isinstance(result, Valid), result
    order = [i.id for i in instrument.items()]
    ids = [a.item_id for a in result.answers]
    assert ids == sorted(ids, key=order.index)
    assert len(ids) == len(answers)
    assert result.respondent.age_band == "30-39"


@pytest.mark.parametrize(("instrument", "answers"), CASES)
def test_an_unknown_item_is_refused(instrument, answers) -> None:
    assert rules(validate_answers(instrument, {**answers, "comment": "xin cảm ơn"}, PROFILE)) == {
        "answers.comment": f"no such item in {instrument.key}"
    }


@pytest.mark.parametrize(("instrument", "answers"), CASES)
def test_a_value_out_of_scale_is_refused(instrument, answers) -> None:
    scale_item = next(i for i in instrument.items() if i.kind == "scale" and i.id in answers)
    found = rules(validate_answers(instrument, {**answers, scale_item.id: 9}, PROFILE))
    assert list(found) == [f"answers.{scale_item.id}"]
    assert found[f"answers.{scale_item.id}"].startswith("out of the scale")


@pytest.mark.parametrize(("instrument", "answers"), CASES)
def test_a_missing_required_item_is_refused(instrument, answers) -> None:
    required = next(i for i in instrument.items() if i.required)
    rest = {k: v for k, v in answers.items() if k != required.id}
    assert rules(validate_answers(instrument, rest, PROFILE)) == {
        f"answers.{required.id}": f"required by {instrument.key}"
    }


@pytest.mark.parametrize(("instrument", "answers"), CASES)
def test_text_is_not_a_scale_point_and_true_is_not_one(instrument, answers) -> None:
    scale_item = next(i for i in instrument.items() if i.kind == "scale" and i.id in answers)
    for wrong in ("4", True, 4.0):
        assert list(rules(validate_answers(instrument, {**answers, scale_item.id: wrong}, PROFILE))) == [
            f"answers.{scale_item.id}"
        ]


def test_multi_choice_rules() -> None:
    assert SIPAS_2017 is not None
    base = dict(SIPAS_2017_ANSWERS)
    too_many = ["access", "staff_attitude", "staff_capacity", "feedback_handling"]
    assert rules(validate_answers(SIPAS_2017, {**base, "expectations": too_many}, PROFILE)) == {
        "expectations".join(["answers.", ""]): "choose between 1 and 3 options"
    }
    assert rules(validate_answers(SIPAS_2017, {**base, "expectations": ["access", "access"]}, PROFILE)) == {
        "answers.expectations": "an option is chosen more than once"
    }
    found = rules(validate_answers(SIPAS_2017, {**base, "expectations": ["cheaper"]}, PROFILE))
    assert found["answers.expectations"].startswith("not options of the item")
    ok = validate_answers(SIPAS_2017, {**base, "expectations": ["staff_capacity", "access"]}, PROFILE)
    assert isinstance(ok, Valid)
    assert ok.answers[-1].value == ("access", "staff_capacity")  # the instrument's order


def test_profile_bands_only_and_as_the_instrument_defines_them() -> None:
    assert CITIZEN is not None
    assert SIPAS_2023 is not None
    found = rules(validate_answers(CITIZEN, CITIZEN_ANSWERS, {**PROFILE, "name": "Nguyễn Văn A", "age_band": "31"}))
    assert found["respondent.name"].startswith("not recorded: the profile holds bands only")
    assert found["respondent.age_band"].startswith("one of the bands")
    # the citizen questionnaire does not ask ethnicity; SIPAS does, in two bands
    assert rules(validate_answers(CITIZEN, CITIZEN_ANSWERS, {**PROFILE, "ethnicity": "Kinh"})) == {
        "respondent.ethnicity": "not asked by citizen-experience@chiso-2025.1"
    }
    assert isinstance(validate_answers(SIPAS_2023, SIPAS_2023_ANSWERS, {**PROFILE, "ethnicity": "Kinh"}), Valid)
    assert rules(validate_answers(CITIZEN, CITIZEN_ANSWERS, {**PROFILE, "type": "organisation"})) == {
        "respondent.type": "one of ['citizen'] for citizen-experience@chiso-2025.1"
    }


def test_policy_items_need_a_policy_group_of_the_instrument() -> None:
    assert SIPAS_2023 is not None
    assert CITIZEN is not None
    answers = {**SIPAS_2023_ANSWERS, "policy.satisfaction": 4}
    assert rules(validate_answers(SIPAS_2023, answers, PROFILE)) == {
        "answers.policy.satisfaction": "needs the policy_group surveyed"
    }
    assert isinstance(validate_answers(SIPAS_2023, answers, PROFILE, policy_group="giáo dục phổ thông"), Valid)
    assert "policy_group" in rules(validate_answers(SIPAS_2023, answers, PROFILE, policy_group="thể thao"))
    assert rules(validate_answers(CITIZEN, CITIZEN_ANSWERS, PROFILE, policy_group="giáo dục phổ thông")) == {
        "policy_group": "citizen-experience@chiso-2025.1 is not a policy survey"
    }


def test_weights_only_where_the_design_has_them() -> None:
    assert SIPAS_2023 is not None
    assert CITIZEN is not None
    assert isinstance(validate_answers(SIPAS_2023, SIPAS_2023_ANSWERS, PROFILE, weight=1.7), Valid)
    assert "weight" in rules(validate_answers(SIPAS_2023, SIPAS_2023_ANSWERS, PROFILE, weight=0))
    assert "weight" in rules(validate_answers(SIPAS_2023, SIPAS_2023_ANSWERS, PROFILE, weight=float("nan")))
    assert rules(validate_answers(CITIZEN, CITIZEN_ANSWERS, PROFILE, weight=1.0)) == {
        "weight": "citizen-experience@chiso-2025.1 has no weighting design"
    }


def test_answers_in_the_contract_list_form_are_read_too() -> None:
    assert CITIZEN is not None
    listed = [{"item_id": k, "value": v} for k, v in CITIZEN_ANSWERS.items()]
    assert isinstance(validate_answers(CITIZEN, listed, PROFILE), Valid)
    twice = [*listed, {"item_id": "procedures.visits", "value": "1"}]
    assert rules(validate_answers(CITIZEN, twice, PROFILE)) == {"answers.procedures.visits": "answered more than once"}


def test_a_province_adds_an_instrument_by_file_and_cannot_redefine_a_version(tmp_path: Path) -> None:
    assert CITIZEN is not None
    own = CITIZEN.model_copy(update={"id": "ha-noi-kiosk", "version": "2026.1", "provinces": ("01",)})
    (tmp_path / "ha-noi.yaml").write_text(own.model_dump_json(), encoding="utf-8")  # JSON is YAML
    catalog = load_catalog(tmp_path)
    assert catalog.get("ha-noi-kiosk", "2026.1") == own
    (tmp_path / "copy.yaml").write_text(CITIZEN.model_dump_json(), encoding="utf-8")
    with pytest.raises(InstrumentError, match="defined twice"):
        load_catalog(tmp_path)


def test_a_broken_province_file_is_named_with_its_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: x\nversion: '1'\nelements: []\nextra_key: 1\n", encoding="utf-8")
    with pytest.raises(InstrumentError, match=r"bad\.yaml: not a valid instrument"):
        load_catalog(tmp_path)
    with pytest.raises(InstrumentError, match="does not exist"):
        load_catalog(tmp_path / "missing")


def test_an_instrument_naming_an_unknown_scale_is_refused() -> None:
    assert CITIZEN is not None
    document = CITIZEN.model_dump(mode="json")
    document["scales"] = {}
    with pytest.raises(ValueError, match="unknown scale"):
        Instrument.model_validate(document)
    assert InstrumentCatalog([]).all() == []
