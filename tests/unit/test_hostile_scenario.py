"""Hostile scenario files, proven with hypothesis: a valid `Scenario` or one line saying what and where.

`load_scenario` is driven with arbitrary bytes, arbitrary text, YAML built from hostile pieces (deep
nesting, alias bombs, cyclic aliases, unreadable dates and integers, lone surrogates, unsafe tags …) and a
valid scenario with any key's value, or the key itself, replaced by anything. The invariant: a Scenario
that serialises, or a `ScenarioError` whose message names the file, fits on one printable line of bounded
length, and comes quickly; never another exception.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from popsync.exceptions import ScenarioError
from popsync.scenario import MAX_SCENARIO_BYTES, Scenario, load_scenario

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "name": "hostile",
    "seed": 7,
    "population": {
        "generate": {"008": 800},
        "generate_by_age": {"052": {"aged_14_plus": 100, "under_14": 20}},
        "file": "population.jsonl",
        "as_of": "2023-12-31",
    },
    "eid": [{"province": "052", "applied": 50, "activated": {"level_1": 10, "level_2": 20}}],
    "sources": [
        {
            "sector": "insurance",
            "province": "008",
            "rate": 500,
            "generate": {
                "records": 700,
                "unsynced": {"mismatch": 9, "missing_fields": 2},
                "corrected": {"no_diacritics": 10, "legacy_id": 2},
            },
            "cleansing": {"mismatch": {"share": 0.5, "after_s": 2}},
        },
        {"sector": "labour", "province": "052", "file": "labour.jsonl", "stage": 2},
        {
            "sector": "civil_status",
            "province": "008",
            "generate": {"births": 3, "deaths": 2, "period": {"start": "2023-12-01", "end": "2023-12-31"}},
        },
    ],
    "expect": [{"sector": "insurance", "province": "008", "synced": 690, "mismatch": 9}],
    "expect_eid": [{"province": "052", "applied": 50}],
    "expect_chains": [{"province": "008", "kind": "birth", "started": 3}],
    "partitions": 3,
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path and list index in a document."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


PATHS = _paths(BASE)
_BOMB = "[&a [1,1,1,1,1,1,1,1,1,1], " + ", ".join(
    f"&{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(8)
)
# Raw YAML standing for a value: what a hurried or hostile hand writes.
FRAGMENTS = [
    "~",
    "null",
    "yes",
    "off",
    ".nan",
    ".inf",
    "-.inf",
    "1e999",
    "010",
    "08",
    "0o17",
    "0x1F",
    "0b101",
    "1_000",
    "-1",
    "0",
    "1" + "0" * 5000,
    "1" + "0" * 4000,
    "2023-13-45",
    "2023-02-30",
    "2001-12-14t21:59:43.10-05:00",
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\0"',
    '"\\x00\\x1b[31m"',
    '"\\uFEFF"',
    '"\\u2028"',
    '"' + "x" * 100_000 + '"',
    "!!binary AAAA",
    "!!python/object:os.system x",
    "!!python/name:os.system",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!str 1",
    "!!int x",
    "!!float x",
    "!!timestamp x",
    "!!bool maybe",
    "*undefined",
    "&a [*a]",
    "&a {k: *a}",
    "[",
    "}",
    "{a: 1, a: 2}",
    "{[1]: 2}",
    "[" * 100 + "]" * 100,
    "[" * 10_000 + "]" * 10_000,
    _BOMB + ", *i]",
    "{}",
    "[]",
    '""',
    "'008'",
    '"\uff10\uff10\uff18"',
    "? complex",
    "|\n  block",
    "%YAML 1.1",
    "---",
    "...",
    "@",
    "`",
    "\t",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
fragments = st.one_of(st.sampled_from(FRAGMENTS), json_values.map(lambda v: json.dumps(v, ensure_ascii=True)))
yaml_pieces = st.recursive(
    fragments,
    lambda children: (
        st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")
        | st.lists(st.tuples(children, children), max_size=4).map(
            lambda kvs: "{" + ", ".join(f"{k}: {v}" for k, v in kvs) + "}"
        )
    ),
    max_leaves=8,
)
PROFILE = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
_PLACEHOLDER = "@@HOSTILE@@"


def _folder(tmp: Path) -> Path:
    """A fresh folder with the files the base scenario names (hypothesis shares one tmp_path)."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    (folder / "population.jsonl").write_text("", encoding="utf-8")
    (folder / "labour.jsonl").write_text("", encoding="utf-8")
    return folder


def check(path: Path) -> Scenario | str:
    """load_scenario's answer, checked against the invariant; the error message when it refuses."""
    started = time.monotonic()
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        message = str(exc)
        assert str(path) in message
        assert "\n" not in message and "\r" not in message, message
        assert len(message) < 3000 + len(str(path)), len(message)
        message.encode("utf-8")  # printable: no lone surrogate
        return message
    finally:
        # The bounds make every answer quick; a billion-laughs file took 150 s and a 5 GB message before.
        assert time.monotonic() - started < 20
    scenario.model_dump_json()  # what it holds can be printed and written
    return scenario


def _replaced(path_in_doc: tuple[Any, ...], fragment: str, *, as_key: bool = False) -> str:
    """The base scenario as YAML (flow style, which JSON is) with the value at `path_in_doc`, or its key,
    replaced by a raw YAML fragment."""
    doc = json.loads(json.dumps(BASE))
    parent = doc
    for part in path_in_doc[:-1]:
        parent = parent[part]
    last = path_in_doc[-1]
    if as_key and isinstance(parent, dict):
        parent[_PLACEHOLDER] = parent.pop(last)
    else:
        parent[last] = _PLACEHOLDER
    return json.dumps(doc, ensure_ascii=False).replace(json.dumps(_PLACEHOLDER), fragment)


def test_the_base_scenario_is_valid(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    path = folder / "s.yaml"
    path.write_text(json.dumps(BASE), encoding="utf-8")
    assert isinstance(check(path), Scenario)


@PROFILE
@given(st.binary(max_size=2000))
def test_any_bytes(tmp_path: Path, data: bytes) -> None:
    path = _folder(tmp_path) / "s.yaml"
    path.write_bytes(data)
    check(path)


@PROFILE
@given(st.text(st.characters(exclude_categories=()), max_size=500))
def test_any_text(tmp_path: Path, text: str) -> None:
    path = _folder(tmp_path) / "s.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    check(path)


@PROFILE
@given(yaml_pieces)
def test_any_yaml_document(tmp_path: Path, text: str) -> None:
    path = _folder(tmp_path) / "s.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path)


@PROFILE
@given(st.sampled_from(PATHS), yaml_pieces, st.booleans())
def test_a_valid_scenario_with_any_value_or_key_replaced(
    tmp_path: Path, where: tuple[Any, ...], fragment: str, as_key: bool
) -> None:
    path = _folder(tmp_path) / "s.yaml"
    path.write_text(_replaced(where, fragment, as_key=as_key), encoding="utf-8", errors="surrogatepass")
    check(path)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("fragment", "problem"),
    [
        (_BOMB + ", *i]", "at line 1, column .*: aliases expand this to more than 100,000 values"),
        ("&a [*a]", "an alias refers to a value that holds it"),
        ("[" * 100 + "]" * 100, "nested deeper than 64 levels"),
        ("1" + "0" * 5000, r"'10000000000000000000…\(5,001 characters\)' is not a readable int"),
        ("2023-13-45", "'2023-13-45' is not a readable timestamp: month must be in 1..12"),
        ('"\\ud800"', r"a lone surrogate escape \(such as \\ud800\) is not text"),
        ('"' + "x" * 100_000 + '"', r"'x{20,60}\.\.\.x+' is not one of the 63 province codes"),
    ],
    ids=["alias-bomb", "cyclic-alias", "deep", "long-int", "bad-date", "surrogate", "long-string"],
)
def test_what_the_bounds_refuse_and_how_they_say_it(tmp_path: Path, fragment: str, problem: str) -> None:
    path = _folder(tmp_path) / "s.yaml"
    path.write_text(_replaced(("sources", 0, "province"), fragment), encoding="utf-8", errors="surrogatepass")
    message = check(path)
    assert isinstance(message, str)
    assert re.search(problem, message), message


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = _folder(tmp_path) / "s.yaml"
    path.write_text(json.dumps(BASE) + "\n#" + "x" * MAX_SCENARIO_BYTES, encoding="utf-8")
    assert "larger than 1,048,576 bytes" in str(check(path))


def test_control_characters_in_a_message_are_escaped(tmp_path: Path) -> None:
    path = _folder(tmp_path) / "s.yaml"
    path.write_text(_replaced(("sources", 1, "file"), '"a\\x00b\\nc"'), encoding="utf-8")
    message = check(path)
    assert isinstance(message, str) and "a\\x00b c does not exist" in message


def test_many_problems_are_counted_not_all_listed(tmp_path: Path) -> None:
    doc = {**BASE, "sources": [{"sector": "tax", "province": str(i)} for i in range(40)]}
    path = _folder(tmp_path) / "s.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")
    message = check(path)
    assert isinstance(message, str) and "; and " in message and " more" in message
