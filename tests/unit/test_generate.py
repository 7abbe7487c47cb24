"""Generated sector records (`connectors.generate`): the real outcome rules give exactly the asked counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.generate import GenerateError, GenerateSpec, generate_records, planted_names, write_records
from connectors.names_vi import strip_diacritics
from mocks.ndxp.population import generate_population, id_inconsistent
from schemas.citizen import Citizen
from schemas.fuzzy_rules import judge_names
from schemas.names import fold_diacritics, normalize_name
from schemas.outcomes import Outcome
from schemas.records import Record, parse_object
from schemas.rules import Decision, decide, holder_key, lookup_key

pytestmark = pytest.mark.unit

ALL_KINDS: dict[str, Any] = {
    "records": 12_000,
    "unsynced": {"mismatch": 90, "not_found": 50, "malformed_id": 40, "missing_fields": 60, "deceased": 30,
                 "duplicate": 25},
    "corrected": {"no_diacritics": 70, "legacy_id": 20},
}  # fmt: skip


@pytest.fixture(scope="module")
def population() -> list[Citizen]:
    return list(generate_population(11, {"008": 16_000, "052": 4_000}))


def residents(population: Sequence[Citizen], province: str) -> list[Citizen]:
    return [c for c in population if c.permanent_province == province]


def others(population: Sequence[Citizen], province: str) -> list[Citizen]:
    return [c for c in population if c.permanent_province != province]


def insurance_008(population: Sequence[Citizen], spec: GenerateSpec, seed: int = 3) -> list[dict[str, Any]]:
    return generate_records(
        spec, sector="insurance", province="008", citizens=residents(population, "008"), seed=seed
    )


def judge(records: Sequence[dict[str, Any]], population: Sequence[Citizen]) -> list[Decision]:
    """The pure rules over the records in publish order, with the NPD and first holders as dicts."""
    npd: dict[str, Citizen] = {c.personal_id: c for c in population}
    npd.update({c.legacy_id: c for c in population if c.legacy_id})
    holders: dict[tuple[str, str, str], str] = {}
    decisions = []
    for raw in records:
        record = parse_object(raw)
        assert isinstance(record, Record), record
        key = lookup_key(record)
        hkey = holder_key(record)
        first = holders.get(hkey) if hkey else None
        decision = decide(record, npd.get(key) if key else None, first)
        if decision.passed_identity and first is None and hkey:
            holders[hkey] = record.record_id
        decisions.append(decision)
    return decisions


def expected(spec: GenerateSpec) -> Counter[str]:
    want: Counter[str] = Counter({f"unsynced/{k}": n for k, n in spec.unsynced.model_dump().items() if n})
    want["corrected"] = spec.corrected.no_diacritics + spec.corrected.legacy_id
    want["cleaned"] = spec.clean
    return +want


def outcomes(decisions: Sequence[Decision]) -> Counter[str]:
    return Counter(d.outcome.value for d in decisions)


SPECS = {
    "all-kinds": ALL_KINDS,
    "clean-only": {"records": 5_000},
    "nothing": {"records": 0},
    "defects-only": {"records": 60, "unsynced": {"not_found": 20, "malformed_id": 20, "missing_fields": 20}},
    "one-duplicate": {"records": 2, "unsynced": {"duplicate": 1}},
    "corrections": {"records": 500, "corrected": {"no_diacritics": 300, "legacy_id": 200}},
}


@pytest.mark.parametrize("name", SPECS)
def test_insurance_counts_exact(name: str, population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(SPECS[name])
    records = insurance_008(population, spec)
    assert len(records) == spec.records
    assert outcomes(judge(records, population)) == expected(spec)


def test_labour_with_moved_counts_exact(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(
        {**ALL_KINDS, "records": 3_500, "unsynced": {**ALL_KINDS["unsynced"], "moved": 150, "deceased": 40}}
    )
    records = generate_records(
        spec,
        sector="labour",
        province="052",
        citizens=residents(population, "052"),
        other_citizens=others(population, "052"),
        seed=3,
    )
    assert outcomes(judge(records, population)) == expected(spec)
    assert all("insurance_code" not in r for r in records)
    assert any("occupation" in r for r in records)


def test_small_population_used_to_the_last_citizen() -> None:
    people = list(generate_population(2, {"052": 400}))
    usable = [c for c in people if not c.deceased and not id_inconsistent(c)]
    dead = [c for c in people if c.deceased and not id_inconsistent(c)]
    spec = GenerateSpec.model_validate(
        {"records": len(usable) + len(dead) + 10, "unsynced": {"deceased": len(dead), "duplicate": 10}}
    )
    records = generate_records(spec, sector="insurance", province="052", citizens=people, seed=1)
    assert outcomes(judge(records, people)) == expected(spec)


def test_records_are_well_formed_and_unique(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(ALL_KINDS)
    records = insurance_008(population, spec)
    assert len({r["record_id"] for r in records}) == len(records)
    assert records[0]["record_id"] == "INS-008-0000001"
    codes = [r.get("insurance_code") for r in records]
    good = [c for c in codes if isinstance(c, str) and len(c) == 10 and c.isdigit()]
    assert len(set(good)) == len(good) >= len(records) - spec.unsynced.missing_fields
    assert {r["sector"] for r in records} == {"insurance"}
    assert {r["province"] for r in records} == {"008"}


def test_defects_look_like_their_kind(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(ALL_KINDS)
    records = insurance_008(population, spec)
    decisions = judge(records, population)
    by_kind: dict[Outcome, list[tuple[dict[str, Any], Decision]]] = {}
    for r, d in zip(records, decisions, strict=True):
        by_kind.setdefault(d.outcome, []).append((r, d))
    corrected = by_kind[Outcome.CORRECTED]
    assert sum(len(r["personal_id"]) == 9 for r, _ in corrected) == spec.corrected.legacy_id
    assert sum(r["full_name"].isascii() for r, _ in corrected) == spec.corrected.no_diacritics
    # Varied which field: every field shows up among the missing and the mismatching ones.
    missing = Counter(f for _, d in by_kind[Outcome.MISSING_FIELDS] for f in d.fields)
    assert set(missing) == {"personal_id", "full_name", "date_of_birth", "gender", "insurance_code"}
    assert set(Counter(f for _, d in by_kind[Outcome.MISMATCH] for f in d.fields)) == {
        "full_name", "date_of_birth", "gender"
    }  # fmt: skip
    malformed = [r["personal_id"] for r, _ in by_kind[Outcome.MALFORMED_ID]]
    npd = {c.personal_id for c in population}
    assert 0 < sum(pid in npd for pid in malformed) < len(malformed)  # some are the NPD's own (rule 6)
    # Harmless variety among the cleaned ones.
    cleaned = [r for r, _ in by_kind[Outcome.CLEANED]]
    assert any("/" in r["date_of_birth"] for r in cleaned)
    assert any(r["gender"] in ("Nam", "N\u1eef") for r in cleaned)
    assert any(r["full_name"].isupper() for r in cleaned)
    assert any("  " in r["full_name"] for r in cleaned)


def test_duplicates_follow_their_first_holder(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(ALL_KINDS)
    records = insurance_008(population, spec)
    decisions = judge(records, population)
    seen: set[str] = set()
    for r, d in zip(records, decisions, strict=True):
        pid = str(r.get("personal_id", "")).strip()
        if d.outcome is Outcome.DUPLICATE:
            assert pid in seen
        seen.add(pid)
    positions = [i for i, d in enumerate(decisions) if d.outcome is not Outcome.CLEANED]
    assert positions[-1] - positions[0] > len(records) // 2  # the defects are spread through the stream


def test_same_arguments_same_records(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(ALL_KINDS)
    citizens = residents(population, "008")
    first = generate_records(spec, sector="insurance", province="008", citizens=citizens, seed=5)
    assert first == generate_records(spec, sector="insurance", province="008", citizens=citizens, seed=5)
    assert first != generate_records(spec, sector="insurance", province="008", citizens=citizens, seed=6)


DIGEST_SCRIPT = """
import hashlib, json, sys
from connectors.generate import GenerateSpec, generate_records
from mocks.ndxp.population import citizen_json, generate_population
people = list(generate_population(4, {"008": 3000, "052": 500}))
spec = GenerateSpec.model_validate(json.loads(sys.argv[1]))
records = generate_records(spec, sector="insurance", province="008", seed=4,
                           citizens=[c for c in people if c.permanent_province == "008"])
text = "".join(map(citizen_json, people)) + json.dumps(records, ensure_ascii=False)
print(hashlib.sha256(text.encode()).hexdigest())
"""


def test_same_output_in_every_process() -> None:
    spec = json.dumps({**ALL_KINDS, "records": 2_000})
    digests = {
        subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT, spec],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"records": 20_000}, r"distinct alive citizens of 008.*short by .*generate more population for 008"),
        (
            {"records": 3_000, "corrected": {"legacy_id": 3_000}},
            r"legacy ID \(legacy_id\): needs 3,000.*short by",
        ),
        ({"records": 900, "unsynced": {"deceased": 900}}, r"deceased citizens of 008.*short by"),
        ({"records": 10, "unsynced": {"moved": 1}}, r"moved is a labour outcome"),
        ({"records": 1, "unsynced": {"duplicate": 1}}, r"no record is left to be cleaned"),
    ],
)
def test_short_population_is_a_clear_error(
    population: list[Citizen], spec: dict[str, Any], message: str
) -> None:
    small = residents(population, "008")[:5_000]
    with pytest.raises(GenerateError, match=message):
        generate_records(
            GenerateSpec.model_validate(spec), sector="insurance", province="008", citizens=small, seed=1
        )


def test_no_diacritics_needs_names_with_diacritics(population: list[Citizen]) -> None:
    plain = [c.model_copy(update={"full_name": strip_diacritics(c.full_name)}) for c in population[:50]]
    spec = GenerateSpec.model_validate({"records": 10, "corrected": {"no_diacritics": 1}})
    with pytest.raises(GenerateError, match=r"diacritics in their name \(no_diacritics\): needs 1, .* has 0"):
        generate_records(spec, sector="insurance", province="008", citizens=plain, seed=1)


def test_moved_needs_other_provinces(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate({"records": 10, "unsynced": {"moved": 5}})
    with pytest.raises(GenerateError, match=r"other provinces \(moved\).*short by 5"):
        generate_records(spec, sector="labour", province="052", citizens=residents(population, "052"), seed=1)


@pytest.mark.parametrize(
    ("sector", "province"), [("civil_status", "008"), ("health", "008"), ("labour", "009")]
)
def test_unknown_sources_refused(sector: str, province: str) -> None:
    with pytest.raises(GenerateError):
        generate_records(GenerateSpec(records=0), sector=sector, province=province, citizens=[], seed=1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"records": 5, "unsynced": {"typo": 1}},
            r"unknown key 'typo' in generate.unsynced; allowed keys: mismatch",
        ),
        ({"records": 5, "corrected": {"cmnd": 1}}, r"unknown key 'cmnd'.*no_diacritics, legacy_id"),
        (
            {"records": 5, "extra": 1},
            r"unknown key 'extra' in generate; allowed keys: records, unsynced, corrected",
        ),
        ({"records": -1}, r"greater than or equal to 0"),
        ({"records": 5, "unsynced": {"mismatch": -2}}, r"greater than or equal to 0"),
        (
            {"records": 5, "unsynced": {"mismatch": 3}, "corrected": {"legacy_id": 3}},
            r"add up to 6, more than",
        ),
        ({"unsynced": {}}, r"records"),
        ({"records": "5"}, r"valid integer"),
    ],
)
def test_spec_validation(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GenerateSpec.model_validate(spec)


def test_spec_counts() -> None:
    spec = GenerateSpec.model_validate(ALL_KINDS)
    assert spec.defects == 385
    assert spec.clean == 12_000 - 385


def test_write_records_round_trip(tmp_path: Path, population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate({"records": 50, "unsynced": {"missing_fields": 10}})
    records = generate_records(
        spec, sector="labour", province="008", citizens=residents(population, "008"), seed=1
    )
    path = tmp_path / "labour.jsonl"
    assert write_records(path, records) == 50
    text = path.read_text(encoding="utf-8")
    assert "\\u" not in text
    assert [json.loads(line) for line in text.splitlines()] == records


NAMES: dict[str, Any] = {
    "records": 3_000,
    "unsynced": {"mismatch": 20, "duplicate": 10},
    "names": {"typo": 200, "tone_mark": 150, "order": 150, "dropped_middle": 150, "different_person": 200},
}


def test_name_defects_counts_exact_under_the_exact_rules(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(NAMES)
    kinds: list[str] = []
    records = generate_records(
        spec,
        sector="insurance",
        province="008",
        citizens=residents(population, "008"),
        seed=7,
        kinds_out=kinds,
    )
    planted = planted_names(records, kinds)
    assert Counter(planted.values()) == Counter(NAMES["names"])
    # Without `matching: fuzzy` a tone mark is rule 11's correction and every other defect a mismatch.
    assert outcomes(judge(records, population)) == Counter(
        {"cleaned": spec.clean, "unsynced/mismatch": 20 + 200 + 150 + 150 + 200, "corrected": 150,
         "unsynced/duplicate": 10}
    )  # fmt: skip


def test_name_defects_under_the_fuzzy_rules(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(NAMES)
    kinds: list[str] = []
    records = generate_records(
        spec,
        sector="insurance",
        province="008",
        citizens=residents(population, "008"),
        seed=7,
        kinds_out=kinds,
    )
    planted = planted_names(records, kinds)
    npd = {c.personal_id: c for c in population}
    accepted: Counter[str] = Counter()
    for raw in records:
        if raw["record_id"] not in planted:
            continue
        record = parse_object(raw)
        assert isinstance(record, Record)
        citizen = npd[str(raw["personal_id"]).strip()]
        decision, match = judge_names(record, citizen, decide(record, citizen, None))
        assert match is not None and decision.outcome in (Outcome.CORRECTED, Outcome.MISMATCH)
        if decision.outcome is Outcome.CORRECTED:
            assert decision.corrections == {"full_name": citizen.full_name}
            accepted[planted[raw["record_id"]]] += 1
    assert accepted["different_person"] == 0
    for kind in ("tone_mark", "order", "dropped_middle"):
        assert accepted[kind] == NAMES["names"][kind]
    assert accepted["typo"] >= 0.95 * NAMES["names"]["typo"]


def test_planted_name_defects_look_like_their_kind(population: list[Citizen]) -> None:
    spec = GenerateSpec.model_validate(NAMES)
    kinds: list[str] = []
    citizens = residents(population, "008")
    truth: list[Citizen | None] = []
    records = generate_records(
        spec, sector="insurance", province="008", citizens=citizens, seed=7, kinds_out=kinds, truth_out=truth
    )
    for raw, kind, citizen in zip(records, kinds, truth, strict=True):
        if not kind.startswith("name_") or citizen is None:
            continue
        name, own = normalize_name(raw["full_name"]).split(), normalize_name(citizen.full_name).split()
        if kind == "name_order":
            assert sorted(name) == sorted(own) and name != own
        elif kind == "name_dropped_middle":
            assert len(name) == len(own) - 1 and name[0] == own[0] and name[-1] == own[-1]
        elif kind == "name_tone_mark":
            assert fold_diacritics(raw["full_name"]) == fold_diacritics(citizen.full_name) and name != own
        elif kind == "name_typo":
            assert fold_diacritics(raw["full_name"]) != fold_diacritics(citizen.full_name)
            assert len(name) == len(own)
        else:
            assert fold_diacritics(name[-1]) != fold_diacritics(own[-1])


def test_name_defects_need_names_of_three_words(population: list[Citizen]) -> None:
    short = [c.model_copy(update={"full_name": "Nguyễn An"}) for c in residents(population, "008")[:50]]
    spec = GenerateSpec.model_validate({"records": 10, "names": {"order": 5}})
    with pytest.raises(GenerateError, match=r"name of three words or more \(names\): needs 5.*short by 5"):
        generate_records(spec, sector="insurance", province="008", citizens=short, seed=1)
