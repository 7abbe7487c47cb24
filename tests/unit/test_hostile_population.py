"""Hostile population files, proven with hypothesis: a bad line stops the load naming the file and line.

The population loader (`mocks.ndxp.population_file`, behind `PopulationDB.load_file`, `popsync ndxp serve
--population` and a scenario's `population.file`) is driven with arbitrary bytes, arbitrary JSON and a
good citizen with one field replaced by anything. The invariant: the file loads whole (and every citizen
loaded can be looked up again), or `PopulationFileError` names the file and the hostile line's number on
one line without personal data; no other exception, nothing half-loaded.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.adversarial import HOSTILE_FRAGMENTS
from mocks.ndxp.db import PopulationDB
from mocks.ndxp.exceptions import DuplicateCitizenError, PopulationFileError
from mocks.ndxp.population_file import numbered_citizens, read_population_file
from popsync.population import scenario_population
from popsync.scenario import Scenario
from schemas.citizen import Citizen

pytestmark = pytest.mark.unit

GOOD: list[dict[str, Any]] = [
    {
        "personal_id": "008190000123",
        "legacy_id": "008000123",
        "full_name": "Nguyễn Thị Ánh",
        "date_of_birth": "1990-02-01",
        "gender": "female",
        "birth_province": "008",
        "permanent_province": "008",
        "status": "alive",
        "date_of_death": None,
        "ethnicity": "Kinh",
    },
    {
        "personal_id": "052085000777",
        "full_name": "Lê Văn Tám",
        "date_of_birth": "1985-11-30",
        "gender": "male",
        "permanent_province": "052",
    },
]
# The hostile line's own citizen: what it replaces a field of (its own ID, so it repeats nobody).
BASE: dict[str, Any] = {
    **GOOD[0],
    "personal_id": "008190000124",
    "legacy_id": None,
    "full_name": "Trần Văn Bình",
    "date_of_birth": "1991-03-04",
}
FIELDS = [*BASE, "father_id", "religion"]
PERSONAL = [
    v for c in (*GOOD, BASE) for k, v in c.items() if k in ("personal_id", "full_name", "date_of_birth")
]
PROFILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included: json.dumps writes them as NaN/Infinity
    | st.text(st.characters(exclude_categories=())),  # surrogates included
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
fragments = st.one_of(
    st.sampled_from(HOSTILE_FRAGMENTS),
    st.sampled_from(['"' + "x" * 1_000_000 + '"', "[" * 100_000]),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=True)),
)


@st.composite
def citizen_lines(draw: st.DrawFn) -> bytes:
    """A good citizen with one field replaced by anything, perhaps twice (a duplicate key); any encoding."""
    name = draw(st.sampled_from(FIELDS))
    parts = [f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}" for k, v in BASE.items() if k != name]
    parts.insert(draw(st.integers(0, len(parts))), f"{json.dumps(name)}:{draw(fragments)}")
    if draw(st.booleans()):
        parts.append(f"{json.dumps(name)}:{draw(fragments)}")
    text = "{" + ",".join(parts) + "}"
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "utf-8-sig", "latin-1"]))
    line = text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    return line + draw(st.sampled_from([b"", b"\r"]))


any_line = st.one_of(
    citizen_lines(),
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\xef\xbb\xbf", b" ", b"\t\r", b"\x00", b"{}", b"x" * (1024 * 1024 + 1)]),
)


def _file(tmp: Path, hostile: bytes, at: int) -> tuple[Path, int]:
    """A population file of the good citizens with `hostile` as line `at + 1`; its line number."""
    lines = [json.dumps(c, ensure_ascii=False).encode() for c in GOOD]
    lines.insert(at, hostile)
    path = tmp / "population.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, at + 1


def check_file(tmp: Path, hostile: bytes, at: int) -> list[Citizen] | PopulationFileError:
    """What each reader of a population file makes of it, checked against the invariant."""
    tmp = Path(tempfile.mkdtemp(dir=tmp))  # hypothesis runs many examples in one test's tmp_path
    path, lineno = _file(tmp, hostile, at)
    try:
        citizens = list(read_population_file(path))
    except PopulationFileError as exc:
        _check_error(exc, path, lineno)
        # The NPD's load refuses it the same way, and keeps nothing.
        db = PopulationDB.create(tmp / "npd.sqlite")
        try:
            with pytest.raises(PopulationFileError) as again:
                db.load_file(path)
            assert str(again.value) == str(exc)
            assert db.count() == 0
        finally:
            db.close()
        return exc
    # A blank line carries no citizen; so does a first line holding only the file's byte-order mark.
    body = hostile.removeprefix(b"\xef\xbb\xbf") if lineno == 1 else hostile
    assert len(citizens) == len(GOOD) + (1 if body.strip() else 0)
    # Whatever was read can be stored and read back as it was (extras included), by the NPD and a scenario.
    db = PopulationDB.create(tmp / "npd.sqlite")
    try:
        assert db.load_file(path) == len(citizens)
        found = db.lookup_many([c.personal_id for c in citizens])
        assert [found[c.personal_id] for c in citizens] == citizens
    except DuplicateCitizenError as exc:  # the hostile line kept a good citizen's personal_id
        assert f"{path}:" in str(exc)
    finally:
        db.close()
    return citizens


def _check_error(exc: PopulationFileError, path: Path, lineno: int) -> None:
    message = str(exc)
    assert (exc.path, exc.line) == (path, lineno)
    assert message.startswith(f"{path}:{lineno}: ")
    assert "\n" not in message and len(message) < 2000
    message.encode("utf-8")  # printable: no lone surrogate
    assert not any(value in message for value in PERSONAL), message


@PROFILE
@given(any_line, st.integers(0, len(GOOD)))
def test_any_line_loads_or_stops_the_load_naming_file_and_line(
    tmp_path: Path, hostile: bytes, at: int
) -> None:
    check_file(tmp_path, hostile, at)


@PROFILE
@given(json_values, st.integers(0, len(GOOD)))
def test_any_json_value_that_is_no_citizen_stops_the_load(tmp_path: Path, value: object, at: int) -> None:
    got = check_file(tmp_path, json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"), at)
    if not isinstance(value, dict):
        assert isinstance(got, PopulationFileError)


@PROFILE
@given(citizen_lines(), st.integers(0, len(GOOD)))
def test_a_citizen_with_any_field_replaced_loads_or_stops_the_load(
    tmp_path: Path, hostile: bytes, at: int
) -> None:
    check_file(tmp_path, hostile, at)


def _line_with(name: str, fragment: str) -> bytes:
    text = json.dumps({**BASE, name: "@"}, ensure_ascii=False).replace('"@"', fragment)
    return text.encode()


@pytest.mark.parametrize(
    ("name", "fragment", "problem"),
    [
        ("ethnicity", "NaN", "Invalid JSON"),
        ("ethnicity", "Infinity", "Invalid JSON"),
        ("ethnicity", "1e999", "Invalid JSON: number is infinity"),
        ("ethnicity", '"\\ud800"', "surrogate"),
        ("full_name", '"a\\udfffb"', "surrogate"),
        ("ethnicity", "[" * 65 + "]" * 65, "nested deeper than 64 levels"),
        ("ethnicity", "[" * 2000 + "]" * 2000, "depth"),
        ("ethnicity", '"' + "x" * (1024 * 1024) + '"', "longer than 1,048,576 bytes"),
        ("date_of_birth", "631152000", "date_of_birth: must be a date written YYYY-MM-DD"),
        ("date_of_birth", '"1990-02-01T00:00:00"', "date_of_birth: must be a date written YYYY-MM-DD"),
        ("date_of_birth", '"\uff11\uff19\uff19\uff10-02-01"', "date_of_birth: must be a date written"),
        ("date_of_death", '"2020-02-30"', "date_of_death"),
        (
            "personal_id",
            '"\u0660\u0660\u0668\u0661\u0669\u0660\u0660\u0660\u0660\u0661\u0662\u0664"',
            "personal_id",
        ),
        ("personal_id", "8190000124", "personal_id: Input should be a valid string"),
        ("gender", '"Nam"', "gender"),
        ("status", "null", "status"),
    ],
)
def test_contract_readings_stop_the_load_with_the_reason(
    tmp_path: Path, name: str, fragment: str, problem: str
) -> None:
    got = check_file(tmp_path, _line_with(name, fragment), 1)
    assert isinstance(got, PopulationFileError)
    assert problem in str(got)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"\xef\xbb\xbf", "byte-order mark is only allowed at the start of the file"),
        (json.dumps(BASE).encode("utf-16"), "not UTF-8 text"),
        (json.dumps(BASE, ensure_ascii=False).encode("latin-1", "replace") + b"\xe9", "not UTF-8 text"),
        (b"[1, 2]", "not a citizen: a JSON object is needed, not an array"),
        (b"\x00", "Invalid JSON"),
    ],
)
def test_lines_that_are_no_json_object_stop_the_load(tmp_path: Path, line: bytes, problem: str) -> None:
    got = check_file(tmp_path, line, 1)
    assert isinstance(got, PopulationFileError)
    assert problem in str(got)


def test_blank_lines_crlf_and_a_leading_bom_are_read(tmp_path: Path) -> None:
    path = tmp_path / "population.jsonl"
    lines = [json.dumps(c, ensure_ascii=False).encode() for c in GOOD]
    path.write_bytes(b"\xef\xbb\xbf" + lines[0] + b"\r\n \t\r\n\r\n" + lines[1] + b"\r\n")
    assert [n for n, _ in numbered_citizens(path)] == [1, 4]


def test_duplicate_keys_the_later_counts(tmp_path: Path) -> None:
    got = check_file(tmp_path, _line_with("gender", '"male", "gender": "female"'), 1)
    assert isinstance(got, list) and got[1].gender == "female"


def test_an_unreadable_file_is_one_line_naming_it(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.jsonl", tmp_path):
        with pytest.raises(PopulationFileError) as info:
            list(read_population_file(path))
        assert str(info.value).startswith(f"{path}: cannot read the population file: ")
        assert info.value.line is None


def test_a_scenario_population_names_the_line_repeating_a_personal_id(tmp_path: Path) -> None:
    path, _ = _file(tmp_path, json.dumps({**BASE, "personal_id": GOOD[0]["personal_id"]}).encode(), 2)
    scenario = Scenario.model_validate({"name": "t", "population": {"file": path}, "eid": []} | _SOURCE)
    with pytest.raises(PopulationFileError, match=r"population\.jsonl:3: personal_id 008\*+23 is already in"):
        scenario_population(scenario)
    # … also when the scenario generates the citizen the file repeats
    generated = scenario_population(
        Scenario.model_validate({"name": "t", "population": {"generate": {"008": 5}}} | _SOURCE)
    )
    twin = generated["008"][0].model_dump(mode="json")
    path.write_text(json.dumps(twin) + "\n", encoding="utf-8")
    both = {"name": "t", "population": {"generate": {"008": 5}, "file": path}} | _SOURCE
    with pytest.raises(PopulationFileError, match=r"population\.jsonl:1: .*a citizen the scenario generates"):
        scenario_population(Scenario.model_validate(both))


_SOURCE: dict[str, Any] = {
    "sources": [{"sector": "insurance", "province": "008", "generate": {"records": 1}}]
}
