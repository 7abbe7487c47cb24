"""The summary's cleansing, correction, civil-event and chain figures (`popsync.summary`)."""

from __future__ import annotations

from typing import Any

import pytest

from popsync.collector import RecordResult
from popsync.scenario import FLAT_FIGURES
from popsync.summary import build_summary, chain_entries, check_chain_expectations, check_expectations
from streams.chain_steps import apply_step, step

pytestmark = pytest.mark.unit

MISMATCH, MISSING, NOT_FOUND = "unsynced/mismatch", "unsynced/missing_fields", "unsynced/not_found"


def fixed(first: str, outcome: str, first_ms: int, decided_ms: int, version: int = 2) -> RecordResult:
    """A record re-published with a later version, the collector keeping its first outcome."""
    return RecordResult(
        outcome,
        (),
        10,
        version=version,
        decided_ms=decided_ms,
        first_outcome=first,
        first_decided_ms=first_ms,
    )


def once(outcome: str, **kwargs: Any) -> RecordResult:
    return RecordResult(outcome, (), 10, decided_ms=1_000, **kwargs)


# insurance 008 has a cleansing plan: 3 re-published, 2 of them fixed; labour 052 none.
RESULTS: dict[str, RecordResult] = {
    "insurance|008|I-1": once("cleaned"),
    "insurance|008|I-2": fixed(MISMATCH, "cleaned", 1_000, 3_500),
    "insurance|008|I-3": fixed(MISSING, "corrected", 2_000, 3_000, version=3),
    "insurance|008|I-4": fixed(MISSING, MISMATCH, 1_000, 4_000),  # re-published, still unsynced
    "insurance|008|I-5": once(MISMATCH),  # left by the province
    "insurance|008|I-6": once(NOT_FOUND),
    "insurance|008|I-7": once("corrected", corrected=("personal_id",), legacy_id=True),
    "insurance|008|I-8": once("corrected", corrected=("full_name",)),
    "insurance|008|I-9": once("corrected", corrected=("personal_id", "full_name"), legacy_id=True),
    "insurance|008|I-10": once(MISMATCH, legacy_id=True),  # a legacy ID the NPD did not correct
    "labour|052|L-1": once("cleaned"),
    "labour|052|L-2": once(MISMATCH),
}
KEYS = list(RESULTS)


def summary_of(
    results: dict[str, RecordResult] | None = None,
    cleansing: tuple[tuple[str, str], ...] = (("insurance", "008"),),
    **kwargs: Any,
) -> dict[str, Any]:
    results = RESULTS if results is None else results
    return build_summary("t", list(results), results, 0, 1.0, cleansing=cleansing, **kwargs)


def totals(summary: dict[str, Any], sector: str, province: str) -> dict[str, Any]:
    (total,) = [t for t in summary["totals"] if (t["sector"], t["province"]) == (sector, province)]
    assert isinstance(total, dict)
    return total


# --- re-published records -------------------------------------------------------------------------------


def test_a_re_published_record_counts_once_by_its_latest_outcome() -> None:
    t = totals(summary_of(), "insurance", "008")
    assert t["total"] == 10
    assert t["outcomes"]["cleaned"] == 2
    assert t["outcomes"]["corrected"] == 4
    assert t["outcomes"][MISMATCH] == 3
    assert t["outcomes"][MISSING] == 0, "both missing_fields records were re-published"
    assert t["outcomes"][NOT_FOUND] == 1
    assert (t["synced"], t["unsynced"]) == (6, 4)


def test_republished_and_fixed_per_source() -> None:
    s = summary_of()
    assert (totals(s, "insurance", "008")["republished"], totals(s, "insurance", "008")["fixed"]) == (3, 2)
    assert (totals(s, "labour", "052")["republished"], totals(s, "labour", "052")["fixed"]) == (0, 0)


def test_the_cleansing_entry_of_a_source_with_a_plan() -> None:
    (entry,) = summary_of()["cleansing"]
    assert entry == {
        "sector": "insurance",
        "province": "008",
        "tasks": 6,
        "tasks_by_outcome": {MISMATCH: 3, MISSING: 2, NOT_FOUND: 1},
        "republished": 3,
        "fixed": 2,
        "fixed_by_outcome": {MISMATCH: 1, MISSING: 1},
        "fix_time_s": {"p50": 1.0, "p95": 2.5, "max": 2.5},
    }


def test_tasks_count_first_outcomes_whether_or_not_re_published() -> None:
    (entry,) = summary_of()["cleansing"]
    # I-2 (fixed), I-5 and I-10 (left) were first mismatches; I-4 ends a mismatch but was first missing …
    assert entry["tasks_by_outcome"][MISMATCH] == 3
    # … fields, like I-3: neither ends missing_fields.
    assert entry["tasks_by_outcome"][MISSING] == 2


def test_only_sources_with_a_plan_get_a_cleansing_entry() -> None:
    assert "cleansing" not in summary_of(cleansing=())
    both = summary_of(cleansing=(("labour", "052"), ("insurance", "008"), ("labour", "052")))
    assert [(e["sector"], e["province"]) for e in both["cleansing"]] == [
        ("insurance", "008"),
        ("labour", "052"),
    ]
    labour = both["cleansing"][1]
    assert labour["tasks"] == 1 and labour["tasks_by_outcome"] == {MISMATCH: 1}
    assert (labour["republished"], labour["fixed"], labour["fixed_by_outcome"]) == (0, 0, {})
    assert labour["fix_time_s"] == {"p50": 0.0, "p95": 0.0, "max": 0.0}


def test_a_planned_source_without_records_has_a_zero_entry() -> None:
    (entry,) = summary_of(cleansing=(("labour", "001"),))["cleansing"]
    assert entry == {
        "sector": "labour",
        "province": "001",
        "tasks": 0,
        "tasks_by_outcome": {},
        "republished": 0,
        "fixed": 0,
        "fixed_by_outcome": {},
        "fix_time_s": {"p50": 0.0, "p95": 0.0, "max": 0.0},
    }


def test_fix_time_percentiles_over_many_fixes() -> None:
    results = {
        f"insurance|008|I-{n}": fixed(MISMATCH, "cleaned", 1_000, 1_000 + n * 100) for n in range(1, 101)
    }
    (entry,) = summary_of(results)["cleansing"]
    assert entry["fix_time_s"] == {"p50": 5.0, "p95": 9.5, "max": 10.0}
    assert entry["fixed"] == entry["republished"] == 100


def test_a_re_publication_that_was_synced_first_is_republished_not_fixed() -> None:
    results = {"insurance|008|I-1": fixed("cleaned", "cleaned", 1_000, 2_000)}
    s = summary_of(results)
    assert (totals(s, "insurance", "008")["republished"], totals(s, "insurance", "008")["fixed"]) == (1, 0)
    assert s["cleansing"][0]["tasks"] == 0


def test_a_later_version_whose_first_outcome_is_unknown_is_republished_only() -> None:
    # The collector saw version 2 without version 1 (no first outcome to tell a fix from).
    results = {"insurance|008|I-1": RecordResult("cleaned", (), 5, version=2, decided_ms=9)}
    s = summary_of(results)
    assert (totals(s, "insurance", "008")["republished"], totals(s, "insurance", "008")["fixed"]) == (1, 0)
    assert s["cleansing"][0]["tasks_by_outcome"] == {}


def test_a_version_1_keeps_its_own_outcome_as_first() -> None:
    # A version-1 result never carries a first outcome; a stray one is ignored.
    results = {"insurance|008|I-1": RecordResult(MISMATCH, (), 5, first_outcome="cleaned")}
    (entry,) = summary_of(results)["cleansing"]
    assert entry["tasks_by_outcome"] == {MISMATCH: 1} and entry["republished"] == 0


# --- corrections and legacy IDs --------------------------------------------------------------------------


def test_legacy_ids_and_corrections_per_source() -> None:
    s = summary_of()
    t = totals(s, "insurance", "008")
    assert t["legacy_ids"] == 3
    assert t["legacy_corrected"] == 2
    assert t["corrections"] == {"personal_id": 2, "full_name": 2}
    labour = totals(s, "labour", "052")
    assert (labour["legacy_ids"], labour["legacy_corrected"]) == (0, 0)
    assert labour["corrections"] == {"personal_id": 0, "full_name": 0}


def test_a_personal_id_corrected_without_a_legacy_id_is_not_legacy_corrected() -> None:
    results = {"labour|052|L-1": once("corrected", corrected=("personal_id",))}
    t = totals(summary_of(results), "labour", "052")
    assert (t["legacy_ids"], t["legacy_corrected"], t["corrections"]["personal_id"]) == (0, 0, 1)


def test_only_name_and_id_corrections_are_listed() -> None:
    results = {"labour|052|L-1": once("corrected", corrected=("full_name", "gender"))}
    assert totals(summary_of(results), "labour", "052")["corrections"] == {"personal_id": 0, "full_name": 1}


def test_every_total_has_the_flat_figures() -> None:
    for t in summary_of()["totals"]:
        assert set(t) >= FLAT_FIGURES


# --- civil events ----------------------------------------------------------------------------------------


def test_civil_events_by_province_and_event() -> None:
    results = {
        "civil_status|008|C-1": once("cleaned", event="birth"),
        "civil_status|008|C-2": once(MISSING, event="birth"),
        "civil_status|008|C-3": once("corrected", event="death"),
        "civil_status|001|C-1": once("cleaned", event="marriage"),
        "civil_status|008|C-4": once("unsynced/duplicate", event="birth"),
        "civil_status|008|C-5": once(MISSING),  # an unreadable event word: no event
        "insurance|008|BHYT-TE-1": once("cleaned", chain="008|KS-1"),
    }
    s = summary_of(results, cleansing=())
    assert s["civil_events"] == [
        {"province": "001", "event": "marriage", "total": 1, "synced": 1, "unsynced": 0},
        {"province": "008", "event": "birth", "total": 3, "synced": 1, "unsynced": 2},
        {"province": "008", "event": "death", "total": 1, "synced": 1, "unsynced": 0},
        {"province": "008", "event": "unreadable", "total": 1, "synced": 0, "unsynced": 1},
    ]
    # Every civil-status record is in one row: the rows of a province add up to its total.
    for province in ("001", "008"):
        rows = [e for e in s["civil_events"] if e["province"] == province]
        assert sum(e["total"] for e in rows) == totals(s, "civil_status", province)["total"]


def test_no_civil_events_section_without_events() -> None:
    assert "civil_events" not in summary_of()


def test_a_re_registered_event_counts_once_by_its_latest_outcome() -> None:
    results = {
        "civil_status|008|C-1": RecordResult(
            "cleaned",
            (),
            1,
            version=2,
            decided_ms=2,
            first_outcome=MISSING,
            first_decided_ms=1,
            event="death",
        )
    }
    assert summary_of(results, cleansing=())["civil_events"] == [
        {"province": "008", "event": "death", "total": 1, "synced": 1, "unsynced": 0}
    ]


# --- chains ----------------------------------------------------------------------------------------------


def chain(kind: str, province: str, steps: list[tuple[str, int, bool]]) -> dict[str, Any]:
    state: dict[str, Any] | None = None
    for name, at, ok in steps:
        state = apply_step(state, step(f"{province}|X", kind, province, name, at, ok=ok))
    assert state is not None
    return state


CHAINS = {
    "008|KS-1": chain("birth", "008", [("registered", 0, True), ("card_reconciled", 2_000, True)]),
    "008|KS-2": chain("birth", "008", [("registered", 0, True), ("no_card_needed", 4_000, True)]),
    "008|KS-3": chain("birth", "008", [("registered", 0, True), ("residence_registered", 9_000, False)]),
    "008|KS-4": chain("birth", "008", [("registered", 0, True), ("residence_registered", 100, True)]),
    "008|KT-1": chain("death", "008", [("registered", 0, True), ("allowance_granted", 1_500, True)]),
    "001|KT-1": chain("death", "001", [("registered", 0, True)]),
    "001|KS-1": chain("birth", "001", [("card_reconciled", 700, True)]),  # the registration step not seen
}


def test_chain_entries_per_province_and_kind() -> None:
    assert chain_entries(CHAINS) == [
        {
            "province": "001",
            "kind": "birth",
            "started": 1,
            "completed": 1,
            "stalled": 0,
            "in_progress": 0,
            "duration_s": {"p50": 0.0, "p95": 0.0, "max": 0.0},
        },
        {
            "province": "001",
            "kind": "death",
            "started": 1,
            "completed": 0,
            "stalled": 0,
            "in_progress": 1,
            "duration_s": {"p50": 0.0, "p95": 0.0, "max": 0.0},
        },
        {
            "province": "008",
            "kind": "birth",
            "started": 4,
            "completed": 2,
            "stalled": 1,
            "in_progress": 1,
            "duration_s": {"p50": 2.0, "p95": 4.0, "max": 4.0},  # the stalled chain's 9 s not counted
        },
        {
            "province": "008",
            "kind": "death",
            "started": 1,
            "completed": 1,
            "stalled": 0,
            "in_progress": 0,
            "duration_s": {"p50": 1.5, "p95": 1.5, "max": 1.5},
        },
    ]


def test_no_chains_no_entries() -> None:
    assert chain_entries({}) == []


def test_chains_enter_the_summary_only_when_there_are_some() -> None:
    assert "chains" not in summary_of()
    assert "chains" not in summary_of(chains={})
    assert summary_of(chains=CHAINS)["chains"] == chain_entries(CHAINS)


def test_chain_expectations_met() -> None:
    s = summary_of(chains=CHAINS)
    expectations = [
        ("008", "birth", {"started": 4, "completed": 2, "stalled": 1, "in_progress": 1}),
        ("001", "death", {"in_progress": 1}),
        ("052", "death", {"started": 0}),  # a province without chains has none
    ]
    assert check_chain_expectations(s, expectations) == []


def test_chain_expectations_that_differ_are_each_named() -> None:
    s = summary_of(chains=CHAINS)
    problems = check_chain_expectations(
        s,
        [
            ("008", "birth", {"completed": 3, "stalled": 1}),
            ("008", "death", {"stalled": 1}),
            ("052", "birth", {"started": 1_200}),
        ],
    )
    assert problems == [
        "birth chains 008: completed expected 3, got 2",
        "death chains 008: stalled expected 1, got 0",
        "birth chains 052: started expected 1,200, got 0",
    ]


def test_chain_expectations_without_a_chains_section() -> None:
    assert check_chain_expectations(summary_of(), [("008", "birth", {"started": 0})]) == []
    assert check_chain_expectations(summary_of(), [("008", "birth", {"started": 2})]) == [
        "birth chains 008: started expected 2, got 0"
    ]


# --- check_expectations on the flat figures ---------------------------------------------------------------


def test_flat_figures_are_checked_when_met() -> None:
    s = summary_of()
    expectations = [
        ("insurance", "008", {"fixed": 2, "republished": 3, "legacy_ids": 3, "legacy_corrected": 2}),
        ("labour", "052", {"fixed": 0, "republished": 0, "legacy_ids": 0, "legacy_corrected": 0}),
    ]
    assert check_expectations(s, expectations) == []


def test_flat_figures_that_differ_are_each_named() -> None:
    problems = check_expectations(
        summary_of(),
        [("insurance", "008", {"fixed": 3, "republished": 3, "legacy_ids": 1_000, "legacy_corrected": 0})],
    )
    assert problems == [
        "insurance 008: fixed expected 3, got 2",
        "insurance 008: legacy_ids expected 1,000, got 3",
        "insurance 008: legacy_corrected expected 0, got 2",
    ]


def test_flat_figures_of_a_source_without_records_are_zero() -> None:
    assert check_expectations(summary_of(), [("labour", "001", {"fixed": 0, "legacy_ids": 0})]) == []
    assert check_expectations(summary_of(), [("labour", "001", {"republished": 1})]) == [
        "labour 001: republished expected 1, got 0"
    ]


def test_flat_figures_sit_beside_outcomes_and_sums() -> None:
    expectations = [("insurance", "008", {"total": 10, "synced": 6, MISMATCH: 3, "fixed": 2, "cleaned": 2})]
    assert check_expectations(summary_of(), expectations) == []
