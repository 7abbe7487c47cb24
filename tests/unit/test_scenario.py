"""Scenario files (`popsync.scenario`): a valid one loads; each mistake is named with file, key, remedy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from popsync.exceptions import PopsyncError, ScenarioError
from popsync.scenario import EXPECT_KEYS, Expectation, load_scenario
from schemas.outcomes import Outcome, Sector

pytestmark = pytest.mark.unit

SOURCE = '  - {sector: insurance, province: "008", generate: {records: 10}}\n'


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def scenario_text(*, top: str = "", sources: str = SOURCE, expect: str = "") -> str:
    text = f"name: t\n{top}sources:\n{sources}"
    return text + (f"expect:\n{expect}" if expect else "")


def load_error(path: Path) -> str:
    """The message of the ScenarioError loading `path` raises; it always names the file."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message, "the CLI prints the message on one line"
    return message


# --- a valid file --------------------------------------------------------------------------------------


def test_full_scenario_loads_with_paths_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "population.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "data" / "labour.jsonl").write_text("", encoding="utf-8")
    path = write(
        tmp_path,
        """\
name: tuyen-quang-2023-12
seed: 7
population:
  generate: {"008": 800, "052": 20}
  file: data/population.jsonl
sources:
  - sector: insurance
    province: "008"
    rate: 500
    generate:
      records: 700
      unsynced: {mismatch: 9, not_found: 5, malformed_id: 3, missing_fields: 2, deceased: 1, duplicate: 1}
      corrected: {no_diacritics: 10, legacy_id: 2}
  - sector: labour
    province: "052"
    file: data/labour.jsonl
expect:
  - {sector: insurance, province: "008", synced: 690, unsynced: 21, total: 711}
  - {sector: labour, province: "052", moved: 0, unsynced/deceased: 0, cleaned: 0}
partitions: 3
""",
    )
    s = load_scenario(path)
    assert (s.name, s.seed, s.partitions) == ("tuyen-quang-2023-12", 7, 3)
    assert s.population.generate == {"008": 800, "052": 20}
    assert s.population.file == tmp_path / "data" / "population.jsonl"
    insurance, labour = s.sources
    assert (insurance.sector, insurance.province, insurance.rate) == (Sector.INSURANCE, "008", 500)
    assert insurance.file is None and insurance.generate is not None
    assert insurance.generate.records == 700
    assert insurance.generate.unsynced.mismatch == 9 and insurance.generate.unsynced.moved == 0
    assert insurance.generate.corrected.legacy_id == 2
    assert (labour.sector, labour.province, labour.generate) == (Sector.LABOUR, "052", None)
    assert labour.file == tmp_path / "data" / "labour.jsonl"
    assert [(e.sector, e.province) for e in s.expect] == [(Sector.INSURANCE, "008"), (Sector.LABOUR, "052")]
    assert s.expect[0].figures() == {"synced": 690, "unsynced": 21, "total": 711}
    assert s.expect[1].figures() == {"unsynced/moved": 0, "unsynced/deceased": 0, "cleaned": 0}


def test_paths_resolve_against_the_scenario_directory_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "records.jsonl").write_text("", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(
        tmp_path, scenario_text(sources='  - {sector: labour, province: "052", file: records.jsonl}\n')
    )
    assert load_scenario(path).sources[0].file == tmp_path / "records.jsonl"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    records = tmp_path / "abs.jsonl"
    records.write_text("", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    path = write(sub, scenario_text(sources=f'  - {{sector: labour, province: "052", file: "{records}"}}\n'))
    assert load_scenario(path).sources[0].file == records


def test_defaults(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, scenario_text()))
    assert (s.seed, s.partitions, s.expect) == (0, 6, [])
    assert (s.population.generate, s.population.file) == ({}, None)
    assert s.sources[0].rate is None


def test_unquoted_008_is_the_string_008_in_yaml_1_1(tmp_path: Path) -> None:
    # PyYAML reads 008 (not an octal number: it has an 8) as the string "008", so it is the code.
    text = scenario_text(sources="  - {sector: insurance, province: 008, generate: {records: 1}}\n")
    assert load_scenario(write(tmp_path, text)).sources[0].province == "008"


def test_scenario_error_is_a_popsync_error() -> None:
    assert issubclass(ScenarioError, PopsyncError)  # the CLI turns it into exit 2 and one line


# --- the file itself ----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nope.yaml")
    assert "cannot read scenario" in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: Hà Nội\n".encode("latin-1", "replace").replace(b"?", b"\xe0"))
    assert "not UTF-8" in load_error(path)


def test_not_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nsources: [\n  {sector: insurance\n")
    message = load_error(path)
    assert "not valid YAML" in message
    assert re.search(r"line \d+, column \d+", message)


def test_tab_indentation_names_its_line(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "name: t\n\tsources: []\n"))
    assert "line 2, column 1" in message


@pytest.mark.parametrize(
    "text", ["- a\n- b\n", "just words\n", "", "42\n"], ids=["list", "str", "empty", "int"]
)
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    message = load_error(write(tmp_path, text))
    assert "must be a YAML mapping" in message and "sources" in message


# --- keys and values ------------------------------------------------------------------------------------


def test_unknown_top_level_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, scenario_text(top="sources_extra: 1\n")))
    assert "sources_extra: unknown key" in message
    for key in ("name", "seed", "population", "sources", "expect", "partitions"):
        assert key in message


def test_unknown_key_in_a_source_lists_the_source_keys(tmp_path: Path) -> None:
    text = scenario_text(sources='  - {sector: insurance, province: "008", generate: {records: 1}, rat: 5}\n')
    message = load_error(write(tmp_path, text))
    assert "sources.0.rat: unknown key" in message
    assert "sector, province, generate, file, rate" in message


def test_unknown_key_in_population(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, scenario_text(top="population: {files: x.jsonl}\n")))
    assert "population.files: unknown key; allowed keys here: generate, file" in message


def test_missing_required_key(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "sources:\n" + SOURCE))
    assert "name: required key is missing; add it" in message


def test_no_sources(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "name: t\nsources: []\n"))
    assert "sources:" in message and "at least 1" in message


def test_unknown_sector(tmp_path: Path) -> None:
    text = scenario_text(sources='  - {sector: tax, province: "008", generate: {records: 1}}\n')
    message = load_error(write(tmp_path, text))
    assert "sources.0.sector" in message and "'insurance'" in message


@pytest.mark.parametrize(
    ("written", "code"),
    [("8", "008"), ("1", "001"), ("52", "052")],
)
def test_unquoted_number_province_says_to_quote_it(tmp_path: Path, written: str, code: str) -> None:
    text = scenario_text(
        sources=f"  - {{sector: insurance, province: {written}, generate: {{records: 1}}}}\n"
    )
    message = load_error(write(tmp_path, text))
    assert "sources.0.province" in message
    assert f'province {written} must be quoted as a 3-digit code: write "{code}"' in message


@pytest.mark.parametrize(("written", "octal"), [("010", 8), ("012", 10), ("001", 1), ("077", 63)])
def test_unquoted_octal_province_is_quoted_back_as_written(tmp_path: Path, written: str, octal: int) -> None:
    # YAML 1.1 reads 010 as octal 8; the advice must be "010", not the code of another province ("008").
    text = scenario_text(
        sources=f"  - {{sector: insurance, province: {written}, generate: {{records: 1}}}}\n"
    )
    message = load_error(write(tmp_path, text))
    assert f"province {written} (YAML reads it as the octal number {octal})" in message
    assert f'write "{written}"' in message


def test_unquoted_province_as_population_key(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, scenario_text(top="population: {generate: {8: 100}}\n")))
    assert "population.generate" in message and 'write "008"' in message


def test_unquoted_province_in_an_expectation(tmp_path: Path) -> None:
    text = scenario_text(expect="  - {sector: insurance, province: 8, total: 10}\n")
    message = load_error(write(tmp_path, text))
    assert "expect.0.province" in message and 'write "008"' in message


@pytest.mark.parametrize("where", ["source", "population", "expect"])
def test_unknown_province(tmp_path: Path, where: str) -> None:
    if where == "source":
        text, key = (
            scenario_text(sources='  - {sector: labour, province: "099", file: x}\n'),
            "sources.0.province",
        )
    elif where == "population":
        text, key = scenario_text(top='population: {generate: {"099": 5}}\n'), "population.generate"
    else:
        text = scenario_text(expect='  - {sector: insurance, province: "099", total: 1}\n')
        key = "expect.0.province"
    message = load_error(write(tmp_path, text))
    assert key in message
    assert "'099' is not one of the 63 province codes" in message


@pytest.mark.parametrize("value", ["8.0", "null", "[1]"])
def test_province_of_another_type(tmp_path: Path, value: str) -> None:
    text = scenario_text(sources=f"  - {{sector: insurance, province: {value}, generate: {{records: 1}}}}\n")
    message = load_error(write(tmp_path, text))
    assert "sources.0.province" in message and "not one of the 63 province codes" in message


@pytest.mark.parametrize(
    "source",
    [
        '{sector: insurance, province: "008", generate: {records: 1}, file: r.jsonl}',
        '{sector: insurance, province: "008"}',
    ],
    ids=["both", "neither"],
)
def test_source_needs_exactly_one_of_generate_or_file(tmp_path: Path, source: str) -> None:
    (tmp_path / "r.jsonl").write_text("", encoding="utf-8")
    message = load_error(write(tmp_path, scenario_text(sources=f"  - {source}\n")))
    assert "sources.0: a source needs exactly one of `generate` or `file`" in message


def test_source_file_that_does_not_exist(tmp_path: Path) -> None:
    text = scenario_text(sources=SOURCE + '  - {sector: labour, province: "052", file: missing.jsonl}\n')
    message = load_error(write(tmp_path, text))
    assert f"sources.1.file {tmp_path / 'missing.jsonl'} does not exist" in message


def test_population_file_that_does_not_exist(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, scenario_text(top="population: {file: pop.jsonl}\n")))
    assert f"population.file {tmp_path / 'pop.jsonl'} does not exist" in message


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    text = scenario_text(sources='  - {sector: labour, province: "052", file: dir.jsonl}\n')
    assert "is not a file" in load_error(write(tmp_path, text))


@pytest.mark.parametrize("count", ["-5", "true", "1.5", '"7"'])
def test_population_counts_are_non_negative_whole_numbers(tmp_path: Path, count: str) -> None:
    message = load_error(
        write(tmp_path, scenario_text(top=f'population: {{generate: {{"008": {count}}}}}\n'))
    )
    assert "population.generate" in message
    assert "population of 008 must be a non-negative whole number" in message


@pytest.mark.parametrize("rate", ["0", "-1"])
def test_rate_must_be_positive(tmp_path: Path, rate: str) -> None:
    text = scenario_text(
        sources=f'  - {{sector: insurance, province: "008", generate: {{records: 1}}, rate: {rate}}}\n'
    )
    assert "sources.0.rate" in load_error(write(tmp_path, text))


# --- generate blocks (connectors.generate.GenerateSpec) --------------------------------------------------


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ("{records: -1}", "sources.0.generate.records"),
        ("{records: 10, unsynced: {mismatch: -1}}", "sources.0.generate.unsynced.mismatch"),
        ("{records: 10, corrected: {legacy_id: -2}}", "sources.0.generate.corrected.legacy_id"),
    ],
)
def test_negative_generate_counts(tmp_path: Path, block: str, key: str) -> None:
    text = scenario_text(sources=f'  - {{sector: insurance, province: "008", generate: {block}}}\n')
    message = load_error(write(tmp_path, text))
    assert key in message and "greater than or equal to 0" in message


@pytest.mark.parametrize(
    ("block", "where", "allowed"),
    [
        ("{records: 10, recrods: 1}", "sources.0.generate", "records, unsynced, corrected"),
        ("{records: 10, unsynced: {mismatches: 1}}", "sources.0.generate.unsynced", "mismatch, not_found"),
        (
            "{records: 10, corrected: {diacritics: 1}}",
            "sources.0.generate.corrected",
            "no_diacritics, legacy_id",
        ),
    ],
)
def test_unknown_generate_keys_name_the_allowed_ones(
    tmp_path: Path, block: str, where: str, allowed: str
) -> None:
    text = scenario_text(sources=f'  - {{sector: insurance, province: "008", generate: {block}}}\n')
    message = load_error(write(tmp_path, text))
    assert f"{where}: unknown key" in message and allowed in message


def test_generate_counts_larger_than_records(tmp_path: Path) -> None:
    block = "{records: 5, unsynced: {mismatch: 4}, corrected: {legacy_id: 2}}"
    text = scenario_text(sources=f'  - {{sector: insurance, province: "008", generate: {block}}}\n')
    message = load_error(write(tmp_path, text))
    assert "sources.0.generate" in message and "add up to 6, more than records (5)" in message


# --- expectations -----------------------------------------------------------------------------------


def test_unknown_expect_figure_lists_the_known_ones(tmp_path: Path) -> None:
    text = scenario_text(expect='  - {sector: insurance, province: "008", synched: 5}\n')
    message = load_error(write(tmp_path, text))
    assert "expect.0: unknown figure 'synched'" in message
    assert "synced" in message and "unsynced/mismatch" in message


def test_rejected_is_not_a_figure_of_a_source(tmp_path: Path) -> None:
    # Rejected lines are counted only for the whole run; a per-source `rejected` could never be checked.
    text = scenario_text(expect='  - {sector: insurance, province: "008", rejected: 0}\n')
    assert "unknown figure 'rejected'" in load_error(write(tmp_path, text))


@pytest.mark.parametrize("value", ["-1", "true", "2.5", '"10"', "null"])
def test_expect_figures_are_non_negative_whole_numbers(tmp_path: Path, value: str) -> None:
    text = scenario_text(expect=f'  - {{sector: insurance, province: "008", total: {value}}}\n')
    message = load_error(write(tmp_path, text))
    assert "expect.0: figure 'total' must be a non-negative whole number" in message


def test_expect_needs_sector_and_province(tmp_path: Path) -> None:
    text = scenario_text(expect="  - {total: 5}\n")
    message = load_error(write(tmp_path, text))
    assert "expect.0.sector: required key is missing" in message
    assert "expect.0.province: required key is missing" in message


def test_one_figure_under_two_names_is_refused(tmp_path: Path) -> None:
    text = scenario_text(
        expect='  - {sector: insurance, province: "008", mismatch: 1, unsynced/mismatch: 2}\n'
    )
    message = load_error(write(tmp_path, text))
    assert "figures 'mismatch' and 'unsynced/mismatch' are the same figure" in message


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    text = "name: t\nseed: x\npartitions: 0\nsources:\n" + SOURCE
    message = load_error(write(tmp_path, text))
    assert "seed:" in message and "partitions:" in message


def _expectation(**figures: object) -> Expectation:
    return Expectation.model_validate({"sector": "insurance", "province": "008", **figures})


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("mismatch", "unsynced/mismatch"),
        ("unsynced/mismatch", "unsynced/mismatch"),
        ("duplicate", "unsynced/duplicate"),
        ("moved", "unsynced/moved"),
        ("cleaned", "cleaned"),
        ("corrected", "corrected"),
        ("total", "total"),
        ("synced", "synced"),
        ("unsynced", "unsynced"),
    ],
)
def test_figure_names_as_the_summary_names_them(given: str, named: str) -> None:
    assert _expectation(**{given: 3}).figures() == {named: 3}


def test_every_short_and_long_outcome_name_is_a_figure() -> None:
    for o in Outcome:
        if o is Outcome.REJECTED:
            continue
        assert o.value in EXPECT_KEYS
        assert _expectation(**{o.value: 1}).figures() == {o.value: 1}
        if o.unsynced:
            assert _expectation(**{o.kind: 1}).figures() == {o.value: 1}
