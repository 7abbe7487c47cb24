"""The `popsync` command as a user runs it: a subprocess against the session's real Kafka broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from schemas.outcomes import RECORD_OUTCOMES

pytestmark = pytest.mark.integration

# 300 generated insurance records of Tuyên Quang: 11 unsynced, 3 corrected, 286 cleaned.
OUTCOMES = {
    "unsynced/mismatch": 3,
    "unsynced/not_found": 2,
    "unsynced/malformed_id": 2,
    "unsynced/missing_fields": 2,
    "unsynced/deceased": 1,
    "unsynced/duplicate": 1,
}
CORRECTED = {"no_diacritics": 2, "legacy_id": 1}
EXPECTED_LINE = "Bảo hiểm (008): 289/300 bản ghi đã làm sạch, đạt 96,33%; chưa đồng bộ 11 (3,67%)"
SEED_LINE = "Bảo hiểm (008): 755.363/757.543 bản ghi đã làm sạch, đạt 99,71%; chưa đồng bộ 2.180 (0,29%)"
CLOSED_PORT = "127.0.0.1:9"  # nothing answers: a command that reaches for a broker here fails differently


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def flat(self) -> str:
        """stdout and stderr with white space collapsed: what was said, however the console wrapped it."""
        return " ".join((self.stdout + "\n" + self.stderr).split())


def popsync(args: Sequence[str], *, cwd: Path, bootstrap: str, timeout: float = 90) -> Ran:
    """Run `python -m popsync.cli ARGS` the way a user's shell would, output redirected to files."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env["POPSYNC_BOOTSTRAP_SERVERS"] = bootstrap
    proc = subprocess.run(
        [sys.executable, "-m", "popsync.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def tiny_scenario(directory: Path, *, mismatch_expected: int = 3) -> Path:
    unsynced = ", ".join(f"{k.removeprefix('unsynced/')}: {n}" for k, n in OUTCOMES.items())
    corrected = ", ".join(f"{k}: {n}" for k, n in CORRECTED.items())
    path = directory / "tiny.yaml"
    path.write_text(
        f"""\
name: cli-tiny
seed: 5
partitions: 2
population:
  generate: {{"008": 400}}
sources:
  - sector: insurance
    province: "008"
    generate:
      records: 300
      unsynced: {{{unsynced}}}
      corrected: {{{corrected}}}
expect:
  - {{sector: insurance, province: "008", total: 300, synced: 289, unsynced: 11}}
  - {{sector: insurance, province: "008", mismatch: {mismatch_expected}, unsynced/duplicate: 1, corrected: 3}}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def tiny_run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Ran, Path]:
    """One run of the tiny scenario, shared by the tests that read what it wrote."""
    directory = tmp_path_factory.mktemp("tiny")
    tiny_scenario(directory)
    args = ["simulate", "tiny.yaml", "--summary", "s.json", "--results", "r.jsonl", "--timeout", "120"]
    return popsync(args, cwd=directory, bootstrap=kafka_bootstrap, timeout=180), directory


def test_simulate_reports_in_the_seeds_style_and_writes_the_files(tiny_run: tuple[Ran, Path]) -> None:
    ran, directory = tiny_run
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert EXPECTED_LINE in ran.stdout.splitlines()
    assert "every expected figure matches" in ran.stdout
    assert "Traceback" not in ran.stderr

    summary = json.loads((directory / "s.json").read_text(encoding="utf-8"))
    assert set(summary) == {"scenario", "totals", "rejected", "duration_s", "records_per_s", "sync_lag_ms"}
    assert summary["scenario"] == "cli-tiny"
    assert summary["rejected"] == 0
    assert summary["duration_s"] > 0 and summary["records_per_s"] > 0
    lags = summary["sync_lag_ms"]
    assert set(lags) == {"p50", "p95", "p99"} and 0 <= lags["p50"] <= lags["p95"] <= lags["p99"]
    (total,) = summary["totals"]
    assert (total["sector"], total["province"]) == ("insurance", "008")
    assert (total["total"], total["synced"], total["unsynced"]) == (300, 289, 11)
    assert list(total["outcomes"]) == [o.value for o in RECORD_OUTCOMES]  # every outcome, zeros too
    assert total["outcomes"] == {
        **dict.fromkeys(total["outcomes"], 0),
        **OUTCOMES,
        "cleaned": 286,
        "corrected": 3,
    }

    lines = [json.loads(x) for x in (directory / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 300
    assert len({r["record_id"] for r in lines}) == 300
    assert all(set(r) == {"record_id", "sector", "province", "outcome", "fields"} for r in lines)
    assert Counter(r["outcome"] for r in lines) == {k: v for k, v in total["outcomes"].items() if v}
    assert all(r["fields"] for r in lines if r["outcome"] in ("unsynced/mismatch", "unsynced/missing_fields"))


def test_report_prints_the_same_line_from_the_summary(tiny_run: tuple[Ran, Path]) -> None:
    ran, directory = tiny_run
    assert ran.returncode == 0, ran.stderr[-3000:]
    again = popsync(["report", "s.json", "--lines"], cwd=directory, bootstrap=CLOSED_PORT)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [EXPECTED_LINE]


def test_a_wrong_expected_figure_exits_1_naming_it(kafka_bootstrap: str, tmp_path: Path) -> None:
    tiny_scenario(tmp_path, mismatch_expected=4)
    ran = popsync(
        ["simulate", "tiny.yaml", "--timeout", "120"], cwd=tmp_path, bootstrap=kafka_bootstrap, timeout=180
    )
    assert ran.returncode == 1, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr
    assert EXPECTED_LINE in ran.stdout.splitlines()  # the report is still printed
    assert "insurance 008: unsynced/mismatch expected 4, got 3" in ran.flat
    assert "every expected figure matches" not in ran.stdout


BROKEN = "name: broken\nsources: [\n  {sector: insurance, province: '008'\n"


def test_a_broken_scenario_exits_2_before_starting_anything(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    # No broker answers at CLOSED_PORT: a scenario error (not a Kafka one) shows nothing was started.
    ran = popsync(["simulate", "broken.yaml"], cwd=tmp_path, bootstrap=CLOSED_PORT, timeout=30)
    assert ran.returncode == 2
    assert "Traceback" not in ran.stderr
    assert "error: scenario broken.yaml is not valid YAML at line 4, column 1" in ran.flat
    assert "popsync scenario" not in ran.stdout  # the run's banner comes after the scenario is read


def test_an_invalid_scenario_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nsources:\n  - {sector: insurance, province: 8, generate: {records: 1}}\n",
        encoding="utf-8",
    )
    ran = popsync(["simulate", "bad.yaml"], cwd=tmp_path, bootstrap=CLOSED_PORT, timeout=30)
    assert ran.returncode == 2
    assert "Traceback" not in ran.stderr
    assert 'sources.0.province: province 8 must be quoted as a 3-digit code: write "008"' in ran.flat


@pytest.mark.parametrize(
    ("option", "target", "problem"),
    [
        ("--report", "missing/report.md", "the folder missing does not exist"),
        ("--summary", "out", "it is a folder"),
        ("--results", "missing/results.jsonl", "the folder missing does not exist"),
    ],
)
def test_an_output_that_cannot_be_written_stops_the_run_before_it_starts(
    tmp_path: Path, option: str, target: str, problem: str
) -> None:
    tiny_scenario(tmp_path)
    (tmp_path / "out").mkdir()
    # No broker answers at CLOSED_PORT: the error, not a Kafka one, shows nothing was started.
    ran = popsync(["simulate", "tiny.yaml", option, target], cwd=tmp_path, bootstrap=CLOSED_PORT, timeout=30)
    assert (ran.returncode, "Traceback" in ran.stderr) == (2, False)
    assert ran.stderr.splitlines() == [f"error: cannot write {option} {target}: {problem}"]
    assert "popsync scenario" not in ran.stdout


def test_a_scenario_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    ran = popsync(["simulate", str(path)], cwd=tmp_path, bootstrap=CLOSED_PORT, timeout=30)
    assert ran.returncode == 2
    assert ran.stderr.splitlines() == [
        f"error: scenario {path} is not valid YAML at line 4, column 1: "
        "expected ',' or '}', but got '<stream end>'"
    ]


def test_a_scenario_error_with_brackets_in_its_path(tmp_path: Path) -> None:
    directory = tmp_path / "run[" / "b]"  # the path reads `run[/b]/…`: a closing tag to rich markup
    directory.mkdir(parents=True)
    (directory / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    ran = popsync(["simulate", "run[/b]/broken.yaml"], cwd=tmp_path, bootstrap=CLOSED_PORT, timeout=30)
    assert (ran.returncode, "Traceback" in ran.stderr) == (2, False)
    assert "scenario run[/b]/broken.yaml is not valid YAML" in ran.flat


def test_report_prints_a_seed_sized_line_on_one_line(tmp_path: Path) -> None:
    figures = {"sector": "insurance", "province": "008", "total": 757543, "synced": 755363, "unsynced": 2180}
    (tmp_path / "s.json").write_text(json.dumps({"totals": [figures]}), encoding="utf-8")
    ran = popsync(["report", "s.json", "--lines"], cwd=tmp_path, bootstrap=CLOSED_PORT)
    assert ran.returncode == 0
    assert ran.stdout.splitlines() == [SEED_LINE]


def test_report_of_a_seed_sized_summary_says_the_seed_figures(tmp_path: Path) -> None:
    figures = {"sector": "insurance", "province": "008", "total": 757543, "synced": 755363, "unsynced": 2180}
    (tmp_path / "s.json").write_text(json.dumps({"totals": [figures]}), encoding="utf-8")
    ran = popsync(["report", "s.json"], cwd=tmp_path, bootstrap=CLOSED_PORT)
    assert ran.returncode == 0
    # The Markdown report, in the seed's own sentence (000_…txt, insurance paragraph).
    text = " ".join(ran.stdout.split())
    assert "## Tuyên Quang (008)" in ran.stdout
    assert (
        "đã được cập nhật và xác thực với Cơ sở dữ liệu quốc gia về dân cư: 755.363/757.543 người, "
        "đạt tỷ lệ 99,71%. Số người có thông tin chưa đồng bộ với Cơ sở dữ liệu quốc gia về dân cư: "
        "2.180/757.543, chiếm 0,29%."
    ) in text


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("not-a-summary.json", '{"hello": "world"}', "'totals'"),
        ("not-json.json", "name: yaml, not JSON\n", "Expecting value"),
        ("bad-total.json", '{"totals": [{"sector": "insurance", "province": "008"}]}', "lacks total"),
        ("not-an-object.json", '{"totals": [5]}', "must be a JSON object"),
        ("missing.json", None, "No such file"),
    ],
)
def test_report_of_something_else_exits_2(tmp_path: Path, name: str, content: str | None, says: str) -> None:
    if content is not None:
        (tmp_path / name).write_text(content, encoding="utf-8")
    ran = popsync(["report", name], cwd=tmp_path, bootstrap=CLOSED_PORT)
    assert ran.returncode == 2
    assert "Traceback" not in ran.stderr
    assert f"error: {name} is not a popsync summary" in ran.flat
    assert says in ran.flat


def test_report_of_a_json_list_exits_2(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    ran = popsync(["report", "list.json"], cwd=tmp_path, bootstrap=CLOSED_PORT)
    assert (ran.returncode, "Traceback" in ran.stderr) == (2, False)


def read_topic(bootstrap: str, topic: str, want: int, timeout: float = 30) -> list[Any]:
    """Every message of `topic` from the beginning, once `want` have arrived (or the time is up)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"{topic} does not exist"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(messages) < want and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                messages.extend(batch)
        return messages
    finally:
        consumer.close()


def test_publish_dead_letters_a_line_that_is_not_json(
    kafka_bootstrap: str, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    good = {
        "record_id": "R-1",
        "sector": "insurance",
        "province": "008",
        "personal_id": "008090001234",
        "full_name": "Nguyễn Văn An",
        "date_of_birth": "1990-01-02",
        "gender": "male",
        "insurance_code": "0123456789",
    }
    (tmp_path / "records.jsonl").write_text(
        json.dumps(good, ensure_ascii=False) + "\n{this is not JSON\n", encoding="utf-8"
    )
    prefix = unique_name("cli-publish")
    ran = popsync(
        ["publish", "records.jsonl", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", prefix],
        cwd=tmp_path,
        bootstrap=CLOSED_PORT,  # the option, not the environment, names the broker
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "records.jsonl: published 1, dead-lettered 1" in ran.flat

    (message,) = read_topic(kafka_bootstrap, f"{prefix}.deadletter", want=1)
    body = json.loads(message.value)
    assert body["reason"]
    assert body["origin"] == "records.jsonl:2"
    assert body["raw"] == "{this is not JSON"
    (record,) = read_topic(kafka_bootstrap, f"{prefix}.records.insurance", want=1)
    assert json.loads(record.value)["record_id"] == "R-1"
