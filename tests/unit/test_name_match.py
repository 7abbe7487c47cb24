"""Fuzzy name matching (`schemas.name_match`) and the rules under `matching: fuzzy` (`fuzzy_rules`)."""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.citizen import Citizen
from schemas.fuzzy_rules import judge_names
from schemas.name_match import LEVELS, THRESHOLD, damerau_levenshtein, match_names
from schemas.outcomes import Outcome
from schemas.records import Record, parse_object
from schemas.rules import decide

pytestmark = pytest.mark.unit

NPD = "Nguyễn Văn Hùng"


def levels(record: str, npd: str = NPD) -> list[str]:
    return [t[1] for t in match_names(record, npd).tokens]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (NPD, ["exact", "exact", "exact"]),
        ("  NGUYỄN   văn hùng ", ["exact", "exact", "exact"]),
        (unicodedata.normalize("NFD", NPD), ["exact", "exact", "exact"]),
        ("Nguyen Van Hung", ["unaccented", "unaccented", "unaccented"]),
        ("Nguyễn Văn Hủng", ["exact", "exact", "tone"]),  # only the tone mark differs
        ("Nguyễn Vân Hùng", ["exact", "letter_marks", "exact"]),  # ă/â: the letter itself
        ("Ngyễn Văn Hùng", ["typo", "exact", "exact"]),  # a letter dropped
        ("Nguyễn Văn Hùgn", ["exact", "exact", "typo"]),  # two letters swapped (Damerau)
        ("Nguyễn Hùng", ["exact", "missing", "exact"]),  # middle name dropped
        ("Nguyễn Văn Dũng", ["exact", "exact", "missing", "extra"]),  # another given name
    ],
)
def test_levels_per_word(record: str, expected: list[str]) -> None:
    assert levels(record) == expected


def test_d_and_dj_are_letter_marks() -> None:
    assert levels("Dang Van Hung", "Đặng Văn Hùng") == ["unaccented"] * 3
    assert levels("Dặng Văn Hùng", "Đặng Văn Hùng")[0] == "letter_marks"


def test_two_known_names_are_not_a_typo() -> None:
    # Thành and Thắng are one edit apart without diacritics, but both are names people are given.
    match = match_names("Nguyễn Văn Thành", "Nguyễn Văn Thắng")
    assert not match.accepted
    assert "typo" not in [t[1] for t in match.tokens]


@pytest.mark.parametrize(
    "record",
    [
        "Nguyen Van Hung",
        "Nguyễn Văn Hủng",
        "Ngyễn Văn Hùng",
        "Nguyễn Văn Hùnh",
        "Văn Hùng Nguyễn",  # family name last
        "Hùng Nguyễn Văn",  # given name first
        "Hùng Văn Nguyễn",  # reversed
        "Nguyễn Hùng",
    ],
)
def test_slips_of_the_same_name_are_accepted(record: str) -> None:
    match = match_names(record, NPD)
    assert match.accepted, match
    assert THRESHOLD <= match.score < 1.0


@pytest.mark.parametrize(
    "record",
    ["Nguyễn Văn Bình", "Trần Thị Lan", "Nguyễn Văn Thành", "Trần Văn Hùng", "Nguyễn Đức Hùng", "Hùng"],
)
def test_another_persons_name_is_refused(record: str) -> None:
    assert not match_names(record, NPD).accepted


def test_order_is_named_and_costs_a_little() -> None:
    assert match_names("Văn Hùng Nguyễn", NPD).order == "rotated"
    assert match_names("Hùng Văn Nguyễn", NPD).order == "reversed"
    assert match_names("Nguyễn Hùng Văn", NPD).order == "shuffled"
    assert match_names("Nguyễn Hùng Văn", NPD).score < match_names("Hùng Văn Nguyễn", NPD).score < 1.0


def test_common_family_names_weigh_less() -> None:
    weights = {t[0]: t[3] for t in match_names(NPD, NPD).tokens}
    assert weights["family"] < weights["given"]
    rare = {t[0]: t[3] for t in match_names("Khổng Văn Hùng", "Khổng Văn Hùng").tokens}
    assert rare["family"] > weights["family"] * 4
    # So a typo in the given name costs more next to Nguyễn than next to Khổng.
    assert match_names("Nguyễn Văn Hùnh", NPD).score < match_names("Khổng Văn Hùnh", "Khổng Văn Hùng").score


def test_reading_is_the_records_words_in_the_npd_order() -> None:
    assert match_names("Văn Hùng Nguyễn", NPD).reading == "Nguyễn Văn Hùng"
    assert match_names("văn hùng  NGUYỄN", NPD).reading == "NGUYỄN văn hùng"
    assert match_names("Trần Văn Hùng", NPD).reading == "Trần Văn Hùng"


def test_explanation_is_json_without_name_text() -> None:
    explanation = match_names("Văn Hùng Ngyễn", NPD).explanation()
    text = json.dumps(explanation, ensure_ascii=False)
    for word in ("Nguy", "Văn", "Hùng", "nguy", "van", "hung"):
        assert word not in text
    assert explanation["order"] == "rotated"
    assert [t["role"] for t in explanation["tokens"]] == ["family", "middle", "given"]
    assert explanation["threshold"] == THRESHOLD
    assert explanation["accepted"] is True


def test_damerau_levenshtein() -> None:
    assert damerau_levenshtein("hung", "hung") == 0
    assert damerau_levenshtein("hung", "hugn") == 1
    assert damerau_levenshtein("hung", "hun") == 1
    assert damerau_levenshtein("hung", "xhung") == 1
    assert damerau_levenshtein("hung", "dung") == 1
    assert damerau_levenshtein("nguyen", "ngyuen") == 1
    assert damerau_levenshtein("abc", "xyz") == 3
    assert damerau_levenshtein("a", "abcdef") == 3  # capped at limit + 1


# -- properties -------------------------------------------------------------------------------------

VI_LETTERS = "aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
word = st.text(alphabet=VI_LETTERS + VI_LETTERS.upper(), min_size=1, max_size=7)
vi_name = st.lists(word, min_size=1, max_size=5).map(" ".join)
any_name = st.one_of(vi_name, st.text(max_size=40))
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@PROPS
@given(any_name, any_name)
def test_never_raises_score_in_range_and_symmetric(a: str, b: str) -> None:
    ab, ba = match_names(a, b), match_names(b, a)
    assert 0.0 <= ab.score <= 1.0 and 0.0 <= ba.score <= 1.0
    if max(len(a.split()), len(b.split())) <= 6:  # longer names are paired greedily
        assert ab.score == ba.score
    json.dumps(ab.explanation())
    assert all(level in LEVELS or level in ("missing", "extra") for _, level, _, _ in ab.tokens)


@PROPS
@given(any_name, vi_name)
def test_equal_names_score_top(a: str, b: str) -> None:
    assert match_names(a, a).score == 1.0
    # Vietnamese letters case-fold back to themselves (not every script's upper case does: ΰ → Ϋ́).
    assert match_names(unicodedata.normalize("NFD", b).upper(), b).score == 1.0


@PROPS
@given(st.text("abcdđ", max_size=7), st.text("abcdđ", max_size=7))
def test_one_edit_agrees_with_damerau_levenshtein(a: str, b: str) -> None:
    from schemas.name_match import _one_edit

    if a != b:
        assert _one_edit(a, b) == (damerau_levenshtein(a, b) == 1)


@PROPS
@given(vi_name, vi_name)
def test_top_score_only_for_equal_names(a: str, b: str) -> None:
    same = (
        " ".join(unicodedata.normalize("NFC", a).split()).casefold()
        == " ".join(unicodedata.normalize("NFC", b).split()).casefold()
    )
    assert (match_names(a, b).score == 1.0) == same


@PROPS
@given(vi_name)
def test_a_name_without_diacritics_is_accepted(a: str) -> None:
    from schemas.names import strip_diacritics

    assert match_names(strip_diacritics(a), a).accepted


@PROPS
@given(st.lists(word, min_size=2, max_size=4))
def test_levels_are_symmetric_word_by_word(words: list[str]) -> None:
    a, b = words[0], words[1]
    assert levels(a, b)[0] == levels(b, a)[0] if len(levels(a, b)) == 1 else True


# -- the rules under `matching: fuzzy` --------------------------------------------------------------

CITIZEN = Citizen(
    personal_id="008090000123",
    full_name=NPD,
    date_of_birth=date(1990, 2, 1),
    gender="male",
    permanent_province="008",
    legacy_id="123456789",
)


def record(**fields: Any) -> Record:
    body = {
        "record_id": "r1",
        "sector": "insurance",
        "province": "008",
        "personal_id": CITIZEN.personal_id,
        "full_name": NPD,
        "date_of_birth": "1990-02-01",
        "gender": "male",
        "insurance_code": "0812345678",
    } | fields
    parsed = parse_object(body)
    assert isinstance(parsed, Record)
    return parsed


def fuzzy(rec: Record, citizen: Citizen | None = CITIZEN, holder: str | None = None) -> Any:
    return judge_names(rec, citizen, decide(rec, citizen, holder))


def test_equal_name_is_cleaned_with_a_top_score() -> None:
    decision, match = fuzzy(record(full_name="  nguyễn VĂN hùng"))
    assert decision.outcome is Outcome.CLEANED
    assert match is not None and match.score == 1.0


@pytest.mark.parametrize("name", ["Văn Hùng Nguyễn", "Nguyễn Hùng", "Nguyễn Văn Hùnh", "Nguyen Van Hung"])
def test_accepted_name_is_corrected_never_cleaned(name: str) -> None:
    decision, match = fuzzy(record(full_name=name))
    assert decision.outcome is Outcome.CORRECTED
    assert decision.corrections == {"full_name": NPD}
    assert match is not None and match.accepted


def test_refused_name_is_a_mismatch_of_full_name() -> None:
    decision, match = fuzzy(record(full_name="Trần Thị Lan"))
    assert decision.outcome is Outcome.MISMATCH
    assert decision.fields == ("full_name",)
    assert match is not None and not match.accepted


def test_birth_date_still_decides() -> None:
    decision, _ = fuzzy(record(full_name="Văn Hùng Nguyễn", date_of_birth="1990-02-02"))
    assert decision.outcome is Outcome.MISMATCH
    assert decision.fields == ("date_of_birth",)


def test_legacy_id_and_accepted_name_correct_both() -> None:
    decision, _ = fuzzy(record(personal_id="123456789", full_name="Nguyễn Hùng"))
    assert decision.outcome is Outcome.CORRECTED
    assert decision.corrections == {"personal_id": CITIZEN.personal_id, "full_name": NPD}


def test_rules_before_the_name_are_untouched() -> None:
    decision, match = fuzzy(record(full_name="Nguyễn Hùng"), citizen=None)
    assert decision.outcome is Outcome.NOT_FOUND and match is None
    decision, match = fuzzy(record(full_name="Nguyễn Hùng"), holder="r0")
    assert decision.outcome is Outcome.DUPLICATE and match is None
