"""Precision and recall of the name matcher against planted defects (`popsync.name_quality`), its task field,
and the `names` benchmark's two sides."""

from __future__ import annotations

from datetime import date

import pytest

from benchmarks import bench_names
from benchmarks.bench_rules import judge_all, npd_index
from benchmarks.run import BENCHMARKS
from mocks.ndxp.population import generate_population
from popsync.collector import RecordResult
from popsync.name_quality import name_matching_entries, name_matching_line
from schemas.citizen import Citizen
from schemas.fuzzy_rules import judge_names
from schemas.name_match import match_names
from schemas.records import Record, parse_object
from schemas.rules import decide
from streams.messages import dumps
from streams.tasks import correction_task

pytestmark = pytest.mark.unit


def result(outcome: str, *, scored: bool = True, first: str | None = None) -> RecordResult:
    return RecordResult(
        outcome,
        (),
        0,
        version=2 if first else 1,
        first_outcome=first,
        name_match={"score": 0.9} if scored else None,
    )


def test_precision_and_recall_per_kind() -> None:
    planted = {
        ("insurance", "008"): {
            "t1": "typo",
            "t2": "typo",
            "o1": "order",
            "d1": "different_person",
            "d2": "different_person",
        }
    }
    results = {
        "insurance|008|t1": result("corrected"),
        "insurance|008|t2": result("unsynced/mismatch"),
        "insurance|008|o1": result("corrected"),
        "insurance|008|d1": result("corrected"),  # a false accept
        # a fix of the cleansing loop later synced it: the matcher's decision is the first outcome
        "insurance|008|d2": result("cleaned", first="unsynced/mismatch"),
    }
    (entry,) = name_matching_entries(planted, results, "fuzzy")
    assert entry["planted"] == 5 and entry["scored"] == 5
    assert entry["recall"] == round(2 / 3, 4)
    assert entry["precision"] == round(2 / 3, 4)
    assert entry["false_accepts"] == 1
    assert entry["kinds"]["typo"] == {"planted": 2, "accepted": 1, "recall": 0.5, "precision": 0.5}
    assert entry["kinds"]["order"] == {"planted": 1, "accepted": 1, "recall": 1.0, "precision": 0.5}
    assert entry["kinds"]["different_person"] == {"planted": 2, "accepted": 1, "false_accepts": 1}
    line = name_matching_line(entry)
    assert line.startswith(
        "Name matching (fuzzy) insurance 008: precision 0.667, recall 0.667 over 5 planted"
    )


def test_nothing_accepted_has_no_precision() -> None:
    planted = {("labour", "052"): {"a": "typo"}}
    (entry,) = name_matching_entries(planted, {"labour|052|a": result("unsynced/mismatch")}, "exact")
    assert entry["precision"] is None and entry["recall"] == 0.0
    assert "precision n/a" in name_matching_line(entry)


CITIZEN = Citizen(
    personal_id="008090000123",
    full_name="Nguyễn Văn Hùng",
    date_of_birth=date(1990, 2, 1),
    gender="male",
    permanent_province="008",
)


def test_a_refused_names_task_carries_the_score_and_the_closest_reading() -> None:
    record = parse_object(
        {
            "record_id": "r1",
            "sector": "labour",
            "province": "008",
            "personal_id": CITIZEN.personal_id,
            "full_name": "Văn Bình Nguyễn",
            "date_of_birth": "1990-02-01",
            "gender": "male",
        }
    )
    assert isinstance(record, Record)
    decision, match = judge_names(record, CITIZEN, decide(record, CITIZEN, None))
    assert match is not None and not match.accepted
    task = correction_task(record, decision, CITIZEN, version=1, decided_ms=0, name_match=match)
    assert task is not None
    assert task["fields"] == ["full_name"] and task["npd"] == {"full_name": CITIZEN.full_name}
    assert task["name_match"]["reading"] == "Nguyễn Văn Bình"
    assert task["name_match"]["score"] == match.score < task["name_match"]["threshold"]
    # Without a match (the exact rules), the task is as before.
    plain = correction_task(record, decision, CITIZEN, version=1, decided_ms=0)
    assert plain is not None and "name_match" not in plain


def test_names_benchmark_sides_decide_the_same_records() -> None:
    assert BENCHMARKS[bench_names.NAME] is bench_names.run
    citizens = {"019": list(generate_population(5, {"019": 800}))}
    records, truth = bench_names.planted_source(citizens["019"], 20, seed=3)
    npd = npd_index(citizens)
    lines = [dumps(r) for r in records]
    assert judge_all(lines, npd) == bench_names.judge_all_fuzzy(lines, npd) == 100
    measured = bench_names.quality(records, truth, npd)
    assert measured["precision"] >= 0.995 and measured["recall"] >= 0.9
    assert measured["accepted"]["different_person"] == "0/20"


def test_explanations_are_shared_read_only() -> None:
    first = match_names("Nguyễn Văn Hùng", CITIZEN.full_name).explanation()
    assert first is match_names(" nguyễn văn hùng", CITIZEN.full_name).explanation()
