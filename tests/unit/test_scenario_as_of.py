"""A scenario's top-level `as_of` (issue 13): a real YYYY-MM-DD date or absent; it picks the province map."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from popsync.exceptions import ScenarioError
from popsync.scenario import load_scenario
from schemas.provinces import MERGER_DATE, ProvinceMap, map_for

pytestmark = pytest.mark.unit

BODY = 'name: t\nsources:\n  - {sector: labour, province: "008", generate: {records: 10}}\n'


def load(text: str) -> date | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(text, encoding="utf-8")
        return load_scenario(path).as_of


def error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load(text)
    message = str(info.value)
    assert "\n" not in message and len(message) < 1000
    return message


def test_absent_as_of_is_none_and_the_legacy_map() -> None:
    assert load(BODY) is None
    assert map_for(None) is ProvinceMap.LEGACY


@pytest.mark.parametrize("written", ["2026-01-31", '"2026-01-31"', "'2026-01-31'"])
def test_as_of_quoted_or_not(written: str) -> None:
    assert load(f"as_of: {written}\n{BODY}") == date(2026, 1, 31)


def test_the_day_of_the_merger_and_the_day_before() -> None:
    assert map_for(load(f"as_of: 2025-07-01\n{BODY}")) is ProvinceMap.CURRENT
    assert map_for(load(f"as_of: 2025-06-30\n{BODY}")) is ProvinceMap.LEGACY


@pytest.mark.parametrize(
    "written",
    [
        "20260131",  # a number
        '"2026-1-31"',  # not zero-padded
        '"31/01/2026"',
        '"2026-01-31T00:00:00"',
        "2026-01-31 10:00:00",  # YAML reads a date and time
        "true",
        "null",
        "[2026-01-31]",
        '"２０２６-０１-３１"',  # full-width digits are no ASCII digits
    ],
)
def test_anything_but_a_date_is_refused_on_one_line(written: str) -> None:
    message = error(f"as_of: {written}\n{BODY}")
    assert "as_of: must be a date written YYYY-MM-DD" in message


def test_a_date_that_is_not_real_is_refused() -> None:
    assert '"2025-02-29" is not a real date' in error(f'as_of: "2025-02-29"\n{BODY}').replace("'", '"')
    assert "not valid YAML" in error(f"as_of: 2025-02-30\n{BODY}")  # unquoted: YAML itself refuses it


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)))
def test_every_real_date_round_trips_and_picks_its_map(day: date) -> None:
    assert load(f"as_of: {day.isoformat()}\n{BODY}") == day
    assert load(f'as_of: "{day.isoformat()}"\n{BODY}') == day
    assert map_for(day) is (ProvinceMap.CURRENT if day >= MERGER_DATE else ProvinceMap.LEGACY)
    assert map_for(MERGER_DATE - timedelta(days=1)) is ProvinceMap.LEGACY


@given(st.text(max_size=20))
def test_any_text_is_a_date_or_one_line_error(text: str) -> None:
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    try:
        got = load(f"as_of: {quoted}\n{BODY}")
    except ScenarioError as exc:
        assert "\n" not in str(exc)
        return
    assert got is not None and got.isoformat() == text
