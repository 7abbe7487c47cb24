"""Scenario files (`popsync.scenario`): stages, cleansing, civil-status `generate:` and chain expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.civil_gen import CivilGenerateSpec
from connectors.cleansing import CleansingRule
from connectors.generate import GenerateSpec
from popsync.exceptions import ScenarioError
from popsync.scenario import CHAIN_FIGURES, Scenario, load_scenario
from schemas.outcomes import Sector

pytestmark = pytest.mark.unit

INSURANCE = '{sector: insurance, province: "008", generate: {records: 10}}'
CIVIL = '{sector: civil_status, province: "008", generate: {births: 3, deaths: 2}}'
TAGS = ("civil_records", "sector_records")


def write(tmp_path: Path, *sources: str, extra: str = "") -> Path:
    path = tmp_path / "scenario.yaml"
    lines = "".join(f"  - {s}\n" for s in sources)
    path.write_text(f"name: t\nsources:\n{lines}{extra}", encoding="utf-8")
    return path


def load(tmp_path: Path, *sources: str, extra: str = "") -> Scenario:
    return load_scenario(write(tmp_path, *sources, extra=extra))


def problem(tmp_path: Path, *sources: str, extra: str = "") -> str:
    """What the ScenarioError says after the file name; it never shows an internal tag name."""
    path = write(tmp_path, *sources, extra=extra)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"scenario {path} is invalid: ")
    assert not any(tag in message for tag in TAGS), message
    return message.removeprefix(f"scenario {path} is invalid: ")


# --- stage -----------------------------------------------------------------------------------------------


def test_a_source_is_in_stage_1_unless_told(tmp_path: Path) -> None:
    assert load(tmp_path, INSURANCE).sources[0].stage == 1


@pytest.mark.parametrize("stage", [1, 2, 100])
def test_stages_from_1_to_100(tmp_path: Path, stage: int) -> None:
    source = f'{{sector: labour, province: "008", generate: {{records: 5}}, stage: {stage}}}'
    assert load(tmp_path, source).sources[0].stage == stage


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("0", "sources.1.stage: Input should be greater than or equal to 1"),
        ("-1", "sources.1.stage: Input should be greater than or equal to 1"),
        ("101", "sources.1.stage: Input should be less than or equal to 100"),
        ("two", "sources.1.stage: Input should be a valid integer"),
        ("1.5", "sources.1.stage: Input should be a valid integer"),
    ],
)
def test_a_stage_out_of_bounds_is_refused_with_its_key_path(tmp_path: Path, stage: str, message: str) -> None:
    source = f'{{sector: labour, province: "052", generate: {{records: 5}}, stage: {stage}}}'
    assert message in problem(tmp_path, INSURANCE, source)


def test_sources_keep_their_own_stages(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        '{sector: civil_status, province: "008", generate: {deaths: 2}, stage: 1}',
        '{sector: labour, province: "008", generate: {records: 5}, stage: 2}',
    )
    assert [source.stage for source in s.sources] == [1, 2]


# --- cleansing -------------------------------------------------------------------------------------------


def test_a_source_has_no_cleansing_unless_told(tmp_path: Path) -> None:
    assert load(tmp_path, INSURANCE).sources[0].cleansing is None


@pytest.mark.parametrize("sector", ["insurance", "labour"])
def test_cleansing_on_an_insurance_or_labour_source(tmp_path: Path, sector: str) -> None:
    source = (
        f'{{sector: {sector}, province: "008", generate: {{records: 10}}, '
        "cleansing: {missing_fields: {share: 0.5, after_s: 2}, mismatch: {share: 1}}}"
    )
    cleansing = load(tmp_path, source).sources[0].cleansing
    assert cleansing is not None
    assert cleansing.rules() == {
        "unsynced/missing_fields": CleansingRule(share=0.5, after_s=2),
        "unsynced/mismatch": CleansingRule(share=1),
    }


def test_cleansing_on_a_file_source(tmp_path: Path) -> None:
    (tmp_path / "labour.jsonl").write_text("", encoding="utf-8")
    source = '{sector: labour, province: "008", file: labour.jsonl, cleansing: {mismatch: {share: 0.25}}}'
    cleansing = load(tmp_path, source).sources[0].cleansing
    assert cleansing is not None and cleansing.mismatch == CleansingRule(share=0.25)


CIVIL_CLEANSING = (
    "sources.0: cleansing is for insurance and labour sources; a civil-status registration is corrected by "
    "registering it again with the civil-status office"
)


def test_cleansing_on_a_generated_civil_status_source_is_refused(tmp_path: Path) -> None:
    source = (
        '{sector: civil_status, province: "008", generate: {births: 2}, cleansing: {mismatch: {share: 1}}}'
    )
    assert problem(tmp_path, source) == CIVIL_CLEANSING


def test_cleansing_on_a_civil_status_file_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "civil.jsonl").write_text("", encoding="utf-8")
    source = (
        '{sector: civil_status, province: "008", file: civil.jsonl, cleansing: {missing_fields: {share: 1}}}'
    )
    assert problem(tmp_path, source) == CIVIL_CLEANSING


@pytest.mark.parametrize(
    ("cleansing", "message"),
    [
        (
            "{moved: {share: 1}}",
            "sources.0.cleansing: moved cannot be fixed by re-publishing (a citizen who moved is handed to "
            "the new province); fixable kinds: missing_fields, mismatch",
        ),
        (
            "{mismatch: {share: 1}, duplicate: {share: 1}}",
            "sources.0.cleansing: duplicate cannot be fixed by re-publishing",
        ),
        (
            "{typo: {share: 1}}",
            "sources.0.cleansing: unknown key 'typo' in cleansing; allowed keys: missing_fields, mismatch",
        ),
        (
            "{mismatch: {share: 1.5}}",
            "sources.0.cleansing.mismatch.share: Input should be less than or equal to 1",
        ),
        (
            "{mismatch: {share: 1, after_s: -1}}",
            "sources.0.cleansing.mismatch.after_s: Input should be greater than or equal to 0",
        ),
        (
            "{mismatch: {share: 1, delay: 2}}",
            "sources.0.cleansing.mismatch.delay: unknown key; allowed keys here: share, after_s",
        ),
        ("{mismatch: {after_s: 2}}", "sources.0.cleansing.mismatch.share: required key is missing; add it"),
    ],
)
def test_a_wrong_cleansing_block_is_named_with_its_key_path(
    tmp_path: Path, cleansing: str, message: str
) -> None:
    source = f'{{sector: insurance, province: "008", generate: {{records: 10}}, cleansing: {cleansing}}}'
    assert message in problem(tmp_path, source)


# --- generate: civil-status keys --------------------------------------------------------------------------


def test_a_civil_status_source_generates_civil_events(tmp_path: Path) -> None:
    source = (
        '{sector: civil_status, province: "008", '
        "generate: {births: 5, late_births: 1, deaths: 4, marriages: 2, "
        "corrected: {legacy_id: 1}, unsynced: {duplicate: 1, mismatch: 1}, "
        "period: {start: 2023-11-01, end: 2023-11-30}}}"
    )
    (civil,) = load(tmp_path, source).sources
    assert civil.sector is Sector.CIVIL_STATUS
    assert civil.generate is None and isinstance(civil.civil, CivilGenerateSpec)
    g = civil.civil
    assert (g.births, g.late_births, g.deaths, g.marriages) == (5, 1, 4, 2)
    assert (g.corrected.legacy_id, g.unsynced.duplicate, g.unsynced.mismatch) == (1, 1, 1)
    assert g.period is not None and (g.period.start.isoformat(), g.period.end.isoformat()) == (
        "2023-11-01",
        "2023-11-30",
    )


@pytest.mark.parametrize("key", ["births", "late_births", "deaths", "marriages"])
def test_each_civil_key_alone_makes_a_civil_block(tmp_path: Path, key: str) -> None:
    source = f'{{sector: civil_status, province: "008", generate: {{{key}: 2}}}}'
    generate = load(tmp_path, source).sources[0].civil
    assert isinstance(generate, CivilGenerateSpec) and getattr(generate, key) == 2


def test_an_insurance_source_still_generates_records(tmp_path: Path) -> None:
    assert isinstance(load(tmp_path, INSURANCE).sources[0].generate, GenerateSpec)


@pytest.mark.parametrize("sector", ["insurance", "labour"])
@pytest.mark.parametrize("block", ["{births: 3}", "{deaths: 1, marriages: 1}", "{late_births: 1}"])
def test_an_insurance_or_labour_source_refuses_civil_keys(tmp_path: Path, sector: str, block: str) -> None:
    source = f'{{sector: {sector}, province: "008", generate: {block}}}'
    first = block.strip("{}").split(":")[0]
    assert problem(tmp_path, source) == (
        f"sources.0.generate: unknown key '{first}' in generate; "
        "allowed keys: records, unsynced, corrected, names"
    )


def test_a_civil_status_source_refuses_records(tmp_path: Path) -> None:
    source = '{sector: civil_status, province: "008", generate: {records: 10}}'
    assert problem(tmp_path, source) == (
        "sources.0.generate.records: unknown key; allowed keys here: "
        "births, late_births, deaths, marriages, corrected, unsynced, refused_marriages, period"
    )


def test_a_civil_status_source_needs_generate_or_file(tmp_path: Path) -> None:
    (tmp_path / "civil.jsonl").write_text("", encoding="utf-8")
    neither = '{sector: civil_status, province: "008"}'
    both = '{sector: civil_status, province: "008", file: civil.jsonl, generate: {births: 1}}'
    for source in (neither, both):
        assert problem(tmp_path, source) == "sources.0: a source needs exactly one of `generate` or `file`"


@pytest.mark.parametrize(
    ("block", "where"),
    [
        ("{births: 2, unsynced: {moved: 1}}", "sources.0.generate.unsynced.moved: unknown key"),
        ("{births: 2, typo: 1}", "sources.0.generate.typo: unknown key"),
        (
            "{deaths: 2, corrected: {no_diacritic: 1}}",
            "sources.0.generate.corrected: unknown key 'no_diacritic' in generate.corrected; "
            "allowed keys: no_diacritics, legacy_id",
        ),
        ("{births: -1}", "sources.0.generate.births: Input should be greater than or equal to 0"),
        ("{births: 1.5}", "sources.0.generate.births: Input should be a valid integer"),
        ("{marriages: 1, unsynced: {deceased: -2}}", "sources.0.generate.unsynced.deceased: Input should be"),
        (
            "{births: 2, period: {start: 2023-02-01, end: 2023-01-01}}",
            "sources.0.generate.period: period starts 2023-02-01 after it ends 2023-01-01",
        ),
        (
            "{births: 2, period: {start: 2023-02-01}}",
            "sources.0.generate.period.end: required key is missing",
        ),
    ],
)
def test_an_error_inside_a_civil_generate_reads_without_tag_names(
    tmp_path: Path, block: str, where: str
) -> None:
    source = f'{{sector: civil_status, province: "008", generate: {block}}}'
    assert where in problem(tmp_path, source)


def test_the_key_path_names_the_failing_source(tmp_path: Path) -> None:
    bad = '{sector: civil_status, province: "052", generate: {births: 1, unsynced: {moved: 1}}}'
    assert problem(tmp_path, INSURANCE, CIVIL.replace('"008"', '"001"'), bad).startswith(
        "sources.2.generate.unsynced.moved: "
    )


def test_an_unknown_key_in_a_civil_generate_names_the_allowed_keys(tmp_path: Path) -> None:
    source = '{sector: civil_status, province: "008", generate: {births: 2, unsynced: {moved: 1}}}'
    assert problem(tmp_path, source) == (
        "sources.0.generate.unsynced.moved: unknown key; allowed keys here: "
        "missing_fields, duplicate, not_found, malformed_id, mismatch, deceased"
    )


@pytest.mark.parametrize("block", ["{unsynced: {missing_fields: 2}}", "{corrected: {legacy_id: 1}}"])
def test_a_civil_block_of_defects_only_is_a_civil_block(tmp_path: Path, block: str) -> None:
    source = f'{{sector: civil_status, province: "008", generate: {block}}}'
    assert isinstance(load(tmp_path, source).sources[0].civil, CivilGenerateSpec)


def test_a_civil_key_in_an_insurance_block_is_the_key_named(tmp_path: Path) -> None:
    source = '{sector: insurance, province: "008", generate: {records: 10, births: 2}}'
    message = problem(tmp_path, source)
    assert "births" in message and "records: unknown key" not in message


# --- one generated civil-status source per province ---------------------------------------------------------


def test_two_generated_civil_sources_of_one_province_are_refused(tmp_path: Path) -> None:
    other = '{sector: civil_status, province: "008", generate: {marriages: 2}, stage: 2}'
    message = problem(tmp_path, CIVIL, INSURANCE, other)
    assert message == (
        "(top level): sources: two generated civil_status sources for 008 would issue the same registration "
        "numbers; merge their counts into one source"
    )


def test_generated_civil_sources_of_two_provinces_load(tmp_path: Path) -> None:
    s = load(tmp_path, CIVIL, CIVIL.replace('"008"', '"052"'))
    assert [source.province for source in s.sources] == ["008", "052"]


def test_a_civil_file_source_beside_a_generated_one_of_the_same_province_loads(tmp_path: Path) -> None:
    (tmp_path / "civil.jsonl").write_text("", encoding="utf-8")
    s = load(tmp_path, CIVIL, '{sector: civil_status, province: "008", file: civil.jsonl}')
    assert s.sources[1].file == tmp_path / "civil.jsonl"


# --- expect_chains -----------------------------------------------------------------------------------------


def test_chain_expectations_load_with_their_figures(tmp_path: Path) -> None:
    extra = (
        "expect_chains:\n"
        '  - {province: "008", kind: birth, started: 3, completed: 2, stalled: 1, in_progress: 0}\n'
        '  - {province: "008", kind: death, completed: 2}\n'
    )
    s = load(tmp_path, CIVIL, extra=extra)
    birth, death = s.expect_chains
    assert (birth.province, birth.kind, death.kind) == ("008", "birth", "death")
    assert birth.figures() == {"completed": 2, "in_progress": 0, "started": 3, "stalled": 1}
    assert death.figures() == {"completed": 2}
    assert set(birth.figures()) == CHAIN_FIGURES - {"cards", "cards_synced"}


def test_no_chain_expectations_unless_told(tmp_path: Path) -> None:
    assert load(tmp_path, CIVIL).expect_chains == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            '{province: "008", kind: birth, finished: 1}',
            "expect_chains.0.finished: unknown key; allowed keys here: "
            "province, kind, started, completed, stalled, in_progress",
        ),
        (
            '{province: "008", kind: marriage, started: 1}',
            "expect_chains.0.kind: Input should be 'birth' or 'death'",
        ),
        ('{province: "008", kind: Birth}', "expect_chains.0.kind: Input should be 'birth' or 'death'"),
        ('{province: "008", started: 1}', "expect_chains.0.kind: required key is missing; add it"),
        (
            '{province: "008", kind: death, stalled: -1}',
            "expect_chains.0.stalled: Input should be greater than or equal to 0",
        ),
        (
            "{province: 8, kind: death}",
            "expect_chains.0.province: province 8 must be quoted as a 3-digit code",
        ),
        (
            '{province: "999", kind: death}',
            "expect_chains.0.province: '999' is not one of the 63 province codes",
        ),
    ],
)
def test_a_wrong_chain_expectation_is_refused(tmp_path: Path, entry: str, message: str) -> None:
    assert message in problem(tmp_path, CIVIL, extra=f"expect_chains:\n  - {entry}\n")
