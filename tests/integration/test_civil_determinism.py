"""Civil status decided the same way whatever the timing: 1 or 3 workers, 3 or 12 partitions.

One conflict-rich scenario (docs/civil-status.md, "Order"): registration numbers used twice, people
registered dead twice or married twice, a death then a marriage of the same person, a birth carrying a
stray personal_id, a refused record whose registration number a later record takes, every marriage the
law refuses (the generator's plants and hand-made ones, a parent marrying the child a birth of the same
stage registers), and record IDs repeated in a later stage. Each configuration must give the same result
for every record, the same NPD (citizens, registrations, refusals, residence changes) and the same issued
IDs, and those must be what deciding the records in publish order gives.
"""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from rich.console import Console

from connectors.civil_gen import build_civil
from popsync.population import scenario_population
from popsync.scenario import load_scenario
from popsync.simulate import RunOptions, run_scenario
from schemas.citizen import Citizen
from schemas.civil import MARRIAGE_CONDITIONS, full_years, is_married, issue_personal_id
from streams.topics import TopicNames

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = """\
name: civil-order-{name}
seed: 5
population:
  generate: {{"008": 6000, "019": 3000}}
sources:
  - sector: civil_status
    province: "008"
    generate:
      births: 12
      late_births: 2
      deaths: 8
      marriages: 6
      unsynced: {{missing_fields: 2, duplicate: 2, mismatch: 2, deceased: 1}}
      refused_marriages: {{before_birth: 2, in_future: 2, under_age: 2, same_sex: 2, direct_relatives: 2}}
  - sector: civil_status
    province: "019"
    file: stage1.jsonl
  - sector: civil_status
    province: "019"
    stage: 2
    file: stage2.jsonl
partitions: {partitions}
"""
CONFIGS = [(1, 3), (3, 12), (3, 3), (1, 12)]  # (workers, partitions)


def _line(**fields: Any) -> str:
    return json.dumps({"sector": "civil_status", "province": "019", **fields}, ensure_ascii=False)


def _identity(c: Citizen) -> dict[str, Any]:
    return {
        "personal_id": c.personal_id,
        "full_name": c.full_name,
        "date_of_birth": c.date_of_birth.isoformat(),
        "gender": c.gender,
    }


def _death(rid: str, reg: str, c: Citizen, on: str = "2023-12-05") -> str:
    return _line(record_id=rid, event="death", event_date=on, registration_no=reg, **_identity(c))


def _marriage(rid: str, reg: str, c: Citizen, spouse: str, on: str = "2023-12-10") -> str:
    return _line(
        record_id=rid, event="marriage", event_date=on, registration_no=reg, spouse_id=spouse, **_identity(c)
    )


def _birth(rid: str, reg: str, name: str, born: str, gender: str, **more: Any) -> str:
    return _line(
        record_id=rid, event="birth", event_date="2023-12-12", registration_no=reg, full_name=name,
        date_of_birth=born, gender=gender, **more,
    )  # fmt: skip


def write_sources(folder: Path, citizens: list[Citizen]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The two file sources, and the outcome (with fields) each of their records gets in publish order."""
    on = date(2023, 12, 31)
    free = [c for c in citizens if c.permanent_province == "019" and not c.deceased and not is_married(c)]
    old_men = [c for c in free if c.gender == "male" and full_years(c.date_of_birth, on) >= 50]
    men = [c for c in free if c.gender == "male" and 25 <= full_years(c.date_of_birth, on) < 50]
    women = [c for c in free if c.gender == "female" and full_years(c.date_of_birth, on) >= 25]
    girls = [c for c in free if c.gender == "female" and full_years(c.date_of_birth, on) < 16]
    expect: dict[str, tuple[str, tuple[str, ...]]] = {}
    one: list[str] = []
    # 1. Registration numbers used twice by deaths of different people: the first published wins.
    for i in range(15):
        a, b = men.pop(), women.pop()
        one += [_death(f"dup-a{i}", f"KT-D{i}", a), _death(f"dup-b{i}", f"KT-D{i}", b)]
        expect |= {f"dup-a{i}": ("cleaned", ()), f"dup-b{i}": ("unsynced/duplicate", ())}
    # 2. One person registered dead twice under two numbers.
    for i in range(5):
        c = men.pop()
        one += [_death(f"twice-a{i}", f"KT-T{i}a", c), _death(f"twice-b{i}", f"KT-T{i}b", c)]
        expect |= {f"twice-a{i}": ("cleaned", ()), f"twice-b{i}": ("unsynced/deceased", ())}
    # 3. One man married twice: the second marriage finds him married.
    for i in range(5):
        m, w1, w2 = men.pop(), women.pop(), women.pop()
        one += [
            _marriage(f"wed-a{i}", f"KH-W{i}a", m, w1.personal_id),
            _marriage(f"wed-b{i}", f"KH-W{i}b", m, w2.personal_id),
        ]
        expect |= {f"wed-a{i}": ("cleaned", ()), f"wed-b{i}": ("unsynced/mismatch", ("marital_status",))}
    # 4. A death, then a marriage of the same person.
    for i in range(4):
        m, w = men.pop(), women.pop()
        one += [_death(f"dm-a{i}", f"KT-M{i}", m), _marriage(f"dm-b{i}", f"KH-M{i}", m, w.personal_id)]
        expect |= {f"dm-a{i}": ("cleaned", ()), f"dm-b{i}": ("unsynced/deceased", ())}
    # 5. Births under one number, the first carrying a stray personal_id (once a key of its own).
    for i in range(6):
        stray = men[i].personal_id
        one += [
            _birth(f"kid-a{i}", f"KS-B{i}", "Lò Văn Một", "2023-12-01", "male", personal_id=stray),
            _birth(f"kid-b{i}", f"KS-B{i}", "Lò Văn Hai", "2023-12-02", "male"),
        ]
        expect |= {f"kid-a{i}": ("cleaned", ()), f"kid-b{i}": ("unsynced/duplicate", ())}
    # 6. A refused record, then another taking its registration number: decided again after a
    #    rebalance, the first must stay refused (not turn into a duplicate).
    for i in range(5):
        m, w = men.pop(), women.pop()
        wrong = {**_identity(m), "full_name": "Không Phải Tên Này"}
        reg = f"KT-R{i}"
        one.append(
            _line(record_id=f"ref-a{i}", event="death", event_date="2023-12-05", registration_no=reg, **wrong)
        )
        one.append(_death(f"ref-b{i}", reg, w))
        expect |= {f"ref-a{i}": ("unsynced/mismatch", ("full_name",)), f"ref-b{i}": ("cleaned", ())}
    # 7. Marriages the law refuses, by hand.
    future = (date.today() + timedelta(days=400)).isoformat()
    one.append(_marriage("law-future", "KH-L1", men.pop(), women.pop().personal_id, on=future))
    one.append(_marriage("law-young", "KH-L2", men.pop(), girls.pop().personal_id))
    one.append(_marriage("law-same", "KH-L3", men.pop(), men.pop().personal_id))
    expect |= {
        "law-future": ("unsynced/mismatch", ("event_date",)),
        "law-young": ("unsynced/ineligible", ("spouse_id", "marriage_age")),
        "law-same": ("unsynced/ineligible", ("same_sex",)),
    }
    # A father registers his adult daughter's late birth; in the same stage they try to marry (the NPD now
    # links them), then she marries someone else: the refusal changed nothing.
    father = old_men.pop()
    one.append(
        _birth("late-kid", "KS-L4", "Lò Thị Con", "1998-04-04", "female", father_id=father.personal_id)
    )
    daughter = issue_personal_id(
        "019", "female", 1998, "KS-L4", {c.personal_id for c in citizens}.__contains__
    )
    one.append(_marriage("late-wed", "KH-L5", father, daughter, on="2023-12-20"))
    one.append(_marriage("late-wed-2", "KH-L6", men.pop(), daughter, on="2023-12-21"))
    expect |= {
        "late-kid": ("cleaned", ()),
        "late-wed": ("unsynced/ineligible", ("direct_relatives",)),
        "late-wed-2": ("cleaned", ()),
    }
    (folder / "stage1.jsonl").write_text("\n".join(one) + "\n", encoding="utf-8")
    # Stage 2: record IDs of stage 1 again (dead-lettered: nobody dies, no child is issued), and a new one.
    two = [
        _death("dup-b0", "KT-NEW-0", women.pop()),
        _birth("kid-a0", "KS-NEW-1", "Lò Văn Ba", "2023-12-03", "male"),
        _death("fresh-1", "KT-NEW-2", men.pop()),
    ]
    expect["fresh-1"] = ("cleaned", ())
    (folder / "stage2.jsonl").write_text("\n".join(two) + "\n", encoding="utf-8")
    return expect


def npd_state(db_path: Path) -> dict[str, Any]:
    """Everything the registrations and their chains wrote to the NPD, without the times of writing."""
    with sqlite3.connect(db_path) as db:
        return {
            "citizens": db.execute("SELECT * FROM citizens ORDER BY personal_id").fetchall(),
            "registrations": db.execute(
                "SELECT province, registration_no, record_id, event, outcome, fields, corrections, "
                "personal_id, spouse_personal_id FROM civil_registrations ORDER BY 1, 2"
            ).fetchall(),
            "refusals": db.execute(
                "SELECT province, record_id, digest, outcome, fields FROM civil_refusals ORDER BY 1, 2, 3"
            ).fetchall(),
            "residence": db.execute(
                "SELECT agency, reference, action, personal_id, province, on_date FROM residence_changes "
                "ORDER BY 1, 2"
            ).fetchall(),
        }


def run(tmp_path: Path, kafka_bootstrap: str, workers: int, partitions: int) -> dict[str, Any]:
    name = f"w{workers}-p{partitions}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(SCENARIO.format(name=name, partitions=partitions), encoding="utf-8")
    results = tmp_path / f"{name}.results.jsonl"
    topics: list[TopicNames] = []
    options = RunOptions(
        on_running=lambda live: topics.append(live.topics),
        workers=workers,
        bootstrap_servers=kafka_bootstrap,
        results=results,
        workdir=tmp_path / name,
        timeout_s=600,
    )
    outcome = run_scenario(path, options, Console(file=io.StringIO()))
    assert outcome.problems == [], outcome.problems
    lines = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines()]
    civil = [r for r in lines if r["sector"] == "civil_status" and r["outcome"] != "rejected"]
    consumer = KafkaConsumer(
        topics[0].tasks("civil_status"),
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        tasks = {t["record_id"]: t for t in (json.loads(m.value) for m in consumer)}
    finally:
        consumer.close()
    return {
        "tasks": {rid: (t["outcome"], tuple(t["fields"]), t.get("condition")) for rid, t in tasks.items()},
        "outcomes": {r["record_id"]: (r["outcome"], tuple(r["fields"])) for r in civil},
        "published": [r["record_id"] for r in civil],
        # The children's health-insurance cards the birth chains made, reconciled like any record.
        "cards": sorted((r["record_id"], r["outcome"]) for r in lines if r["sector"] == "insurance"),
        "rejected": sorted((r["record_id"], r["reason"]) for r in lines if r["outcome"] == "rejected"),
        "npd": npd_state(tmp_path / name / "npd.sqlite"),
        "events": outcome.summary["civil_events"],
    }


def test_the_same_outcomes_npd_and_ids_in_every_configuration(kafka_bootstrap: str, tmp_path: Path) -> None:
    (tmp_path / "stage1.jsonl").touch()
    (tmp_path / "stage2.jsonl").touch()
    (tmp_path / "probe.yaml").write_text(SCENARIO.format(name="probe", partitions=3), encoding="utf-8")
    scenario = load_scenario(tmp_path / "probe.yaml")
    citizens = [c for group in scenario_population(scenario).values() for c in group]
    expect = write_sources(tmp_path, citizens)
    generated = build_civil(
        scenario.sources[0].civil,  # type: ignore[arg-type]
        seed=scenario.seed,
        province="008",
        citizens=citizens,
        as_of=scenario.population.as_of,
    )

    runs = {config: run(tmp_path, kafka_bootstrap, *config) for config in CONFIGS}

    first = runs[CONFIGS[0]]
    # What deciding in publish order gives: the hand-made conflicts, and the generator's plants
    # (every marriage refusal of the law among them) as it planned them.
    outcomes = first["outcomes"]
    assert {rid: outcomes[rid] for rid in expect} == expect
    assert {rid: outcomes[rid][0] for rid in generated.outcomes} == generated.outcomes
    assert len(outcomes) == len(expect) + len(generated.outcomes)  # one outcome per record, no more
    assert first["rejected"] == [
        (rid, f"record_id '{rid}' repeats an earlier record of this source in this run")
        for rid in ("dup-b0", "kid-a0")
    ]
    assert {o for _, o in first["cards"]} == {"cleaned"} and len(
        first["cards"]
    ) == 12 + 6  # generated, kid-a*
    refused = [o for o in outcomes.values() if o[0] == "unsynced/ineligible"]
    assert len(refused) == 3 + 6  # by hand, and the generator's under_age, same_sex, direct_relatives
    # Every unsynced record went back to its province as a task; a refused marriage's says which
    # condition of the law (or of its dates) failed.
    unsynced = {rid for rid, (o, _) in outcomes.items() if o.startswith("unsynced/")}
    assert set(first["tasks"]) == unsynced
    assert first["tasks"]["late-wed"] == (
        "unsynced/ineligible",
        ("direct_relatives",),
        MARRIAGE_CONDITIONS[("direct_relatives",)],
    )
    assert first["tasks"]["law-future"][2] == "M11: the marriage date is in the future"
    conditions = [c for _, _, c in first["tasks"].values() if c is not None]
    assert len(conditions) == 4 + 10  # the refusals by hand, and the generator's ten
    # civil_events accounts for every civil-status record, the unreadable ones too.
    assert sum(e["total"] for e in first["events"]) == len(outcomes)
    # Nothing a rejected or refused record names was changed; the NPD changed for the synced ones only.
    npd = first["npd"]
    issued = {r[2]: r[7] for r in npd["registrations"] if r[3] == "birth"}
    assert "kid-b0" not in issued and len(set(issued.values())) == len(issued)
    assert issued["late-kid"] == issue_personal_id(
        "019", "female", 1998, "KS-L4", {c.personal_id for c in citizens}.__contains__
    )

    # Every configuration: the same, record for record, row for row.
    for config, other in runs.items():
        assert other["outcomes"] == first["outcomes"], config
        assert other["published"] == first["published"], config
        assert other["rejected"] == first["rejected"], config
        assert other["cards"] == first["cards"], config
        assert other["tasks"] == first["tasks"], config
        for table in ("registrations", "refusals", "residence", "citizens"):
            assert other["npd"][table] == npd[table], (config, table)
