"""The scenario's e-ID parts (`popsync.scenario`): figures, exact population by age, expectations, errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from popsync.exceptions import ScenarioError
from popsync.scenario import EID_EXPECT_KEYS, load_scenario

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TQ = {"008": "applied: 620224, approved: {level_1: 300736, level_2: 291935}, "
      "activated: {level_1: 196290, level_2: 271116}"}  # fmt: skip


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def eid_text(entries: str, *, population: str = "", extra: str = "") -> str:
    return f"name: e\n{population}eid:\n{entries}{extra}"


def load_error(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


# --- valid files ----------------------------------------------------------------------------------------


def test_the_seed_scenarios_load_with_their_figures() -> None:
    tq = load_scenario(ROOT / "scenarios" / "tuyen-quang-2023-12-eid.yaml")
    (spec,) = tq.eid
    targets = spec.targets()
    assert targets.approved == {1: 300_736, 2: 291_935}
    assert targets.activated == {1: 196_290, 2: 271_116}
    assert targets.total_applied == 620_224
    assert targets.applied == {1: 300_736, 2: 291_935 + 27_553}  # not yet approved: at `level` (2)
    assert spec.report_style == "levels"
    assert tq.sources == []
    bd = load_scenario(ROOT / "scenarios" / "binh-dinh-2024-h1-eid.yaml")
    (spec,) = bd.eid
    assert spec.report_style == "eligible"
    assert bd.population.as_of == date(2024, 6, 30)
    assert bd.population.generate_by_age["052"].aged_14_plus == 1_256_188
    assert spec.targets().approved == spec.targets().activated == {1: 0, 2: 1_006_251}
    assert bd.expect_eid[0].figures() == {"eligible": 1_256_188, "applied": 1_195_107, "activated": 1_006_251}


def test_plain_figures_are_at_the_given_level(tmp_path: Path) -> None:
    s = load_scenario(
        write(tmp_path, eid_text('  - {province: "019", applied: 10, approved: 8, activated: 5, level: 1}\n'))
    )
    targets = s.eid[0].targets()
    assert (targets.applied, targets.approved, targets.activated) == (
        {1: 10, 2: 0},
        {1: 8, 2: 0},
        {1: 5, 2: 0},
    )
    assert s.eid[0].report_style == "eligible"


def test_a_scenario_may_have_sources_and_eid(tmp_path: Path) -> None:
    text = (
        'name: both\npopulation:\n  generate_by_age: {"008": {aged_14_plus: 100}}\n'
        'sources:\n  - {sector: insurance, province: "008", generate: {records: 10}}\n'
        'eid:\n  - {province: "008", applied: 50, activated: 20, report: levels}\n'
        'expect_eid:\n  - {province: "008", approved_level_2: 20, eligible: 100}\n'
    )
    s = load_scenario(write(tmp_path, text))
    assert len(s.sources) == 1 and s.eid[0].report_style == "levels"
    assert s.population.as_of == date(2023, 12, 31)
    assert s.population.generate_by_age["008"].groups().total == 100


def test_every_e_id_figure_has_a_key_in_total_and_by_level() -> None:
    assert {"eligible", "applied", "approved_level_1", "activated_level_2", "locked"} <= EID_EXPECT_KEYS
    assert "eligible_level_1" not in EID_EXPECT_KEYS


# --- mistakes, each named -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("{province: '008', applied: 10, approved: {level_1: 5}, activated: {level_1: 6}}",
         "eid.0: activated level 1 (6) exceeds approved level 1 (5)"),
        ("{province: '008', applied: {level_1: 4, level_2: 9}, approved: {level_1: 5}}",
         "approved level 1 (5) exceeds applied level 1 (4)"),
        ("{province: '008', applied: 7, activated: 8}", "applied (7) is less than approved (8)"),
        ("{province: '008', applied: 9, activated: 5, upgraded: 6}",
         "upgraded (6) exceeds approved level 2 (5)"),
        ("{province: '008', applied: 9, activated: 5, locked: 6}", "locked (6) exceeds activated (5)"),
        ("{province: '008', applied: -1}", "eid.0.applied: applied must be a non-negative whole number"),
        ("{province: '008', applied: true}",
         "applied must be a non-negative whole number or {level_1: n, level_2: n}, got True"),
        ("{province: '008', applied: ten}", "or {level_1: n, level_2: n}, got 'ten'"),
        ("{province: '008', applied: {level_3: 1}}", "applied has unknown key 'level_3'"),
        ("{province: '008', applied: {level_1: x}}", "applied.level_1 must be a non-negative whole number"),
        ("{province: '008', applied: 5, level: 3}", "eid.0.level"),
        ("{province: 8, applied: 5}", 'write "008"'),
        ("{province: '008', applied: 5, report: monthly}", "eid.0.report"),
        ("{province: '008', applied: 5, activate: 3}",
         "eid.0.activate: unknown key; allowed keys here: province"),
        ("{province: '008'}", "eid.0.applied: required key is missing"),
    ],
)  # fmt: skip
def test_figures_that_cannot_be_reached_are_named(tmp_path: Path, entry: str, says: str) -> None:
    assert says in load_error(write(tmp_path, eid_text(f"  - {entry}\n")))


def test_a_province_listed_twice(tmp_path: Path) -> None:
    text = eid_text("  - {province: '008', applied: 1}\n  - {province: '008', applied: 2}\n")
    assert "province 008 is listed twice" in load_error(write(tmp_path, text))


def test_more_applications_than_citizens_aged_14_and_over(tmp_path: Path) -> None:
    population = "population:\n  generate_by_age: {'052': {aged_14_plus: 100, under_14: 900}}\n"
    text = eid_text("  - {province: '052', applied: 101}\n", population=population)
    message = load_error(write(tmp_path, text))
    assert "eid 052: 101 applications exceed the 100 citizens aged 14 and over" in message


def test_expectations_name_known_figures_of_listed_provinces(tmp_path: Path) -> None:
    entry = "  - {province: '008', applied: 1}\n"
    message = load_error(
        write(tmp_path, eid_text(entry, extra="expect_eid:\n  - {province: '008', activate: 1}\n"))
    )
    assert "unknown e-ID figure 'activate'" in message and "activated_level_1" in message
    message = load_error(
        write(tmp_path, eid_text(entry, extra="expect_eid:\n  - {province: '052', applied: 1}\n"))
    )
    assert "expect_eid: province 052 has no `eid` entry" in message
    message = load_error(
        write(tmp_path, eid_text(entry, extra="expect_eid:\n  - {province: '008', applied: -2}\n"))
    )
    assert "figure 'applied' must be a non-negative whole number" in message


def test_population_by_age_mistakes(tmp_path: Path) -> None:
    def population(text: str) -> str:
        return load_error(write(tmp_path, eid_text("  - {province: '008', applied: 1}\n", population=text)))

    assert "exact counts by age go under `generate_by_age`" in population(
        "population:\n  generate: {'008': {aged_14_plus: 5}}\n"
    )
    assert "province 008 is in both `generate` and `generate_by_age`" in population(
        "population:\n  generate: {'008': 5}\n  generate_by_age: {'008': {aged_14_plus: 5}}\n"
    )
    assert "population.generate_by_age.008.aged_14_plus: required key is missing" in population(
        "population:\n  generate_by_age: {'008': {under_14: 5}}\n"
    )
    assert "under_14 must be a non-negative whole number" in population(
        "population:\n  generate_by_age: {'008': {aged_14_plus: 5, under_14: -5}}\n"
    )
    assert "population.as_of: 1999-01-01 is outside 2010-01-01–2030-12-31" in population(
        "population:\n  as_of: 1999-01-01\n"
    )
    assert "allowed keys here: aged_14_plus, under_14, deceased" in population(
        "population:\n  generate_by_age: {'008': {aged_14_plus: 5, adults: 1}}\n"
    )


def test_no_sources_and_no_eid(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "name: t\nsources: []\n"))
    assert "sources:" in message and "at least 1" in message
    assert "at least 1 source" in load_error(write(tmp_path, "name: t\n"))
