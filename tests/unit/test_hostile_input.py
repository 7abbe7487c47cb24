"""Hostile input, proven with hypothesis: no line, message value or field value can stop a run.

Every input path of a record is driven with generated input: `parse_line` (arbitrary bytes, arbitrary JSON,
a good record with one field replaced by anything), the connector over a records file, and the reconcile
agent's reading of Kafka message values that bypassed the connector. The invariant everywhere: every
non-blank line ends as exactly one outcome or one `rejected` with a reason, nothing raises, every message
fits the topics, and the good records around a bad one are unaffected.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.lgsp import LgspConnector
from schemas.citizen import Citizen
from schemas.records import MAX_LINE_BYTES, Record, Rejected, parse_line
from schemas.rules import decide
from streams.holders import FirstHolders
from streams.messages import DEAD_LETTER_RAW_BYTES, dead_letter_body, dumps, envelope_lines
from streams.reconcile import Reconciler
from streams.stats import WorkerStats
from streams.topics import MAX_MESSAGE_BYTES, TopicNames

pytestmark = pytest.mark.unit

TOPICS = TopicNames("hostile")
GOOD: dict[str, Any] = {
    "record_id": "r1",
    "sector": "insurance",
    "province": "008",
    "personal_id": "008190000123",
    "full_name": "Nguyễn Thị Ánh",
    "date_of_birth": "1990-02-01",
    "gender": "female",
    "insurance_code": "0123456789",
}
CITIZEN = Citizen(
    personal_id="008190000123",
    full_name="Nguyễn Thị Ánh",
    date_of_birth="1990-02-01",
    gender="female",
    permanent_province="008",
)
# The citizen of the good record placed after the hostile ones in the worker test (its own ID: no duplicate).
OTHER = CITIZEN.model_copy(update={"personal_id": "008190000124"})
FIELDS = [*GOOD, "occupation", "event", "registration_no", "spouse_id", "legacy_id"]
# A dead letter holds at most 64 KiB of the line (a control byte takes six, as the escape \\u00XX),
# short fields and a reason.
DEAD_LETTER_MAX = DEAD_LETTER_RAW_BYTES * 6 + 8 * 1024
PROFILE = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Raw JSON fragments that stand for a field's value: what a careless or hostile producer writes.
RAW_FRAGMENTS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1" * 5000,
    '"\\ud800"',
    '"\\udfff"',
    '"a\\ud83d"',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    '"\\ufeff"',
    '"\\r\\n"',
    '"\u0660\u0660\u0668\u0661\u0669\u0660\u0660\u0660\u0660\u0661\u0662\u0663"',  # Arabic-Indic digits
    '"\uff10\uff10\uff18\uff11\uff19\uff10\uff10\uff10\uff10\uff11\uff12\uff13"',  # full-width digits
    '"' + "x" * 1_000_000 + '"',  # a line just under 1 MiB
    '"' + "x" * (MAX_LINE_BYTES + 1) + '"',  # a line over 1 MiB
    _nested(63),
    _nested(64),
    _nested(65),
    _nested(1000),
    _nested(100_000)[:100_000],
    "{}",
    "[]",
    "null",
    "true",
    "-0",
    "0.1e-400",
    "",  # `"field":,`: invalid JSON
    "\x00",
    "\ufeff",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=())),  # surrogates included
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def fragment_of(value: object) -> str:
    """A JSON fragment of a Python value; a lone surrogate is written as its escape."""
    return json.dumps(value, ensure_ascii=True)


fragments = st.one_of(st.sampled_from(RAW_FRAGMENTS), json_values.map(fragment_of))


@st.composite
def record_lines(draw: st.DrawFn) -> bytes:
    """A good record with one field replaced by anything, repeated, or given twice; in some encoding."""
    name = draw(st.sampled_from(FIELDS))
    fragment = draw(fragments)
    parts = [f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}" for k, v in GOOD.items() if k != name]
    parts.insert(draw(st.integers(0, len(parts))), f"{json.dumps(name)}:{fragment}")
    if draw(st.booleans()):  # a duplicate key: the later one counts
        parts.append(f"{json.dumps(name)}:{draw(fragments)}")
    text = "{" + ",".join(parts) + "}"
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "utf-8-sig", "latin-1"]))
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


any_line = st.one_of(
    record_lines(),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
)


def check_line(line: bytes) -> Record | Rejected | None:
    """parse_line's answer, with what any caller does next checked not to raise."""
    parsed = parse_line(line)
    body = line.removesuffix(b"\n").removesuffix(b"\r")
    if parsed is None:
        assert body == b""
        return None
    if isinstance(parsed, Rejected):
        assert parsed.reason
        entry = dumps(dead_letter_body(parsed.reason, "f:1", line, parsed.record_id, parsed.sector))
        assert len(entry) <= DEAD_LETTER_MAX
        assert orjson.loads(entry)["reason"] == parsed.reason
        return parsed
    assert len(body) <= MAX_LINE_BYTES
    parsed.record_id.encode("utf-8")  # strict: no lone surrogate made it through
    if parsed.sector != "civil_status":
        decision = decide(parsed, CITIZEN, None)
        dumps({"record_id": parsed.record_id, "outcome": decision.outcome.value, "fields": decision.fields})
    return parsed


@PROFILE
@given(st.binary(max_size=2000))
def test_any_bytes_are_a_record_a_rejection_or_an_empty_line(line: bytes) -> None:
    check_line(line)


@PROFILE
@given(json_values)
def test_any_json_value_is_a_record_or_a_rejection(value: object) -> None:
    parsed = check_line(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if not isinstance(value, dict):
        assert isinstance(parsed, Rejected)


@PROFILE
@given(record_lines())
def test_a_record_with_any_field_replaced_is_decided_or_rejected(line: bytes) -> None:
    check_line(line)


@pytest.mark.parametrize(
    ("fragment", "reason"),
    [
        ("NaN", "NaN"),
        ("-Infinity", "Infinity"),
        ('"\\ud800"', "lone surrogate"),
        ('"a\\udfffb"', "lone surrogate"),
        (_nested(65), "nested deeper than 64"),
        (_nested(1000), "nested deeper than 64"),
        ('"' + "x" * MAX_LINE_BYTES + '"', "line too long"),
    ],
)
@pytest.mark.parametrize("name", ["record_id", "personal_id", "full_name", "occupation"])
def test_contract_readings_of_strict_json_reject_the_line(name: str, fragment: str, reason: str) -> None:
    text = json.dumps({**GOOD, name: "@"}, ensure_ascii=False).replace('"@"', fragment)
    assert reason in check_line(text.encode()).reason  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["personal_id", "full_name", "date_of_birth", "gender", "insurance_code"])
def test_a_number_too_large_for_a_float_in_a_required_field_is_unreadable(name: str) -> None:
    text = json.dumps({**GOOD, name: "@"}).replace('"@"', "1e999")
    parsed = check_line(text.encode())
    assert isinstance(parsed, Record)
    assert decide(parsed, CITIZEN, None).outcome.value == "unsynced/missing_fields"


def test_nesting_of_64_levels_is_read() -> None:
    text = json.dumps({**GOOD, "occupation": "@"}).replace('"@"', _nested(63))  # 1 + 63 levels
    assert isinstance(check_line(text.encode()), Record)


# ---------------------------------------------------------------- the connector over a file


class RecordingProducer:
    """Stands in for KafkaProducer in a unit test: keeps what was sent, refuses what Kafka would."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(6))

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Any = None,
        partition: int | None = None,
    ) -> _Done:
        key = key or b""
        assert len(key) + len(value) + 1024 <= MAX_MESSAGE_BYTES, "Kafka would refuse this message"
        count = dict(headers or ()).get("popsync-envelope")
        lines = envelope_lines(value, int(count)) if count else [value]
        assert len(lines) == int(count or 1), "an envelope says how many records it carries"
        self.sent.extend((topic, key, line) for line in lines)
        return _Done()

    def flush(self) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


class _Done:
    def add_errback(self, _fn: Any) -> None:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(any_line, min_size=1, max_size=12), st.data())
def test_the_connector_accounts_for_every_line_of_any_file(
    tmp_path_factory: pytest.TempPathFactory, hostile: list[bytes], data: st.DataObject
) -> None:
    good = [json.dumps({**GOOD, "record_id": f"good-{i}"}, ensure_ascii=False).encode() for i in range(5)]
    lines = list(good)
    for line in hostile:
        lines.insert(data.draw(st.integers(0, len(lines))), line)
    path = tmp_path_factory.mktemp("hostile") / "records.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    # The file's lines as the reader splits them: each non-blank one must be accounted for.
    physical = path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n")
    expected = sum(1 for raw in physical if raw.rstrip(b"\r\n"))

    producer = RecordingProducer()
    with LgspConnector("unused:9092", TOPICS, producer=producer) as connector:  # type: ignore[arg-type]
        report = connector.publish_file(path)

    assert report.published + report.rejected == expected
    published = [parse_line(v) for t, _, v in producer.sent if t != TOPICS.deadletter]
    assert all(isinstance(p, Record) for p in published)  # the worker reads what the connector passed alike
    published_ids = {p.record_id for p in published if isinstance(p, Record)}
    assert {f"good-{i}" for i in range(5)} <= published_ids | _repeated(hostile)
    dead = [orjson.loads(v) for t, _, v in producer.sent if t == TOPICS.deadletter]
    assert len(dead) == report.rejected
    assert all(d["reason"] for d in dead)


def _repeated(hostile: Sequence[bytes]) -> set[str]:
    """The good record IDs a hostile line may have taken first (the later good one then repeats it)."""
    taken = set()
    for line in hostile:
        parsed = parse_line(line)
        if isinstance(parsed, Record):
            taken.add(parsed.record_id)
    return taken


# ---------------------------------------------------------------- the worker reading message values


@dataclass
class _Message:
    value: bytes
    offset: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = TOPICS.records("insurance")
    partition: int = 0
    timestamp: float = 1.7e9


@dataclass
class _Event:
    message: _Message

    @property
    def value(self) -> bytes:
        return self.message.value


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, *_: Any) -> asyncio.Future[None]:
        key = key or b""
        assert len(key) + len(value) + 1024 <= MAX_MESSAGE_BYTES, "Kafka would refuse this message"
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _App:
    def __init__(self) -> None:
        self.producer = _Producer()


class _Table:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def send_changelog(self, *_: Any) -> None:
        pass


class _Npd:
    async def lookup_many(self, ids: Sequence[str], request_id: str | None = None) -> dict[str, Citizen]:
        known = {c.personal_id: c for c in (CITIZEN, OTHER)}
        return {i: known[i] for i in ids if i in known}


header_values = st.one_of(st.binary(max_size=30), st.just(b"12"), st.just(b"\xff"), st.just(b"9" * 40))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(any_line, min_size=1, max_size=10),
    st.lists(
        st.tuples(st.sampled_from(["popsync-seq", "popsync-version", "popsync-published-ms"]), header_values),
        max_size=3,
    ),
)
def test_the_worker_gives_every_message_value_one_result_or_one_dead_letter(
    values: list[bytes], headers: list[tuple[str, bytes]]
) -> None:
    app = _App()
    good = json.dumps({**GOOD, "record_id": "good-after", "personal_id": OTHER.personal_id}).encode()
    events = [_Event(_Message(v, i, list(headers))) for i, v in enumerate([*values, good])]
    reconciler = Reconciler(app, TOPICS, _Npd(), FirstHolders(_Table()), WorkerStats())  # type: ignore[arg-type]
    asyncio.run(reconciler.process_safely(events))  # type: ignore[arg-type]

    results = [orjson.loads(v) for t, _, v in app.producer.sent if t == TOPICS.results]
    dead = [orjson.loads(v) for t, _, v in app.producer.sent if t == TOPICS.deadletter]
    non_empty = sum(1 for e in events if e.value.removesuffix(b"\n").removesuffix(b"\r"))
    assert len(results) + len(dead) == non_empty
    assert any(r["record_id"] == "good-after" and r["outcome"] == "cleaned" for r in results)
    digested = [
        r for t, _, v in app.producer.sent if t == TOPICS.outcomes for r in orjson.loads(v)["results"]
    ]
    assert sorted(map(str, digested)) == sorted(map(str, results)), "the digests carry every result"
    assert all(d["reason"] for d in dead)


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b""], ids=["lf", "crlf", "at-eof"])
def test_a_line_of_megabytes_is_rejected_with_its_size_without_being_held_whole(
    tmp_path: Path, end: bytes
) -> None:
    from connectors.lgsp import iter_file_lines

    good = json.dumps({**GOOD, "record_id": "after"}).encode()
    huge = b'{"record_id": "' + b"x" * (3 * MAX_LINE_BYTES) + b'"}'
    path = tmp_path / "records.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + huge + end + (good + b"\n" if end else b""))
    lines = list(iter_file_lines(path))
    assert [n for n, _ in lines] == ([1, 2, 3] if end else [1, 2])
    long_line = lines[1][1]
    assert len(long_line) <= DEAD_LETTER_RAW_BYTES  # what the reader kept of it
    reason = rejected_reason(parse_line(long_line))
    assert f"{len(huge):,} bytes" in reason

    producer = RecordingProducer()
    with LgspConnector("unused:9092", TOPICS, producer=producer) as connector:  # type: ignore[arg-type]
        report = connector.publish_file(path)
    assert (report.published, report.rejected) == ((2, 1) if end else (1, 1))


def rejected_reason(value: object) -> str:
    assert isinstance(value, Rejected), value
    return value.reason


@pytest.mark.parametrize(
    "value",
    ['"Nguyễn Văn An"', '"Nguyen Van An"', '"008190000123"', '"123456789"', '"1990-02-01"', '"01/02/1990"'],
    ids=["name", "ascii-name", "personal-id", "legacy-id", "iso-date", "dmy-date"],
)
@pytest.mark.parametrize("field_name", ["sector", "province"])
def test_a_reason_never_quotes_what_could_be_a_citizens_data(field_name: str, value: str) -> None:
    text = json.dumps({**GOOD, field_name: "@"}, ensure_ascii=False).replace('"@"', value)
    reason = rejected_reason(parse_line(text.encode()))
    assert json.loads(value) not in reason and "a text of" in reason
