"""The adversarial corpus generator (`connectors.adversarial`): deterministic, every hostile kind present."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from connectors.adversarial import HOSTILE_KINDS, adversarial_lines, main
from connectors.generate import GenerateSpec, generate_records
from mocks.ndxp.population import generate_population
from schemas.records import MAX_LINE_BYTES, Record, Rejected, parse_line

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def good() -> list[dict[str, Any]]:
    citizens = list(generate_population(3, {"008": 600}))
    spec = GenerateSpec.model_validate({"records": 300, "unsynced": {"duplicate": 5, "mismatch": 5}})
    return generate_records(spec, sector="insurance", province="008", citizens=citizens, seed=3)


def test_same_seed_same_bytes_other_seed_other_bytes(good: list[dict[str, Any]]) -> None:
    assert adversarial_lines(good, 600, 1) == adversarial_lines(good, 600, 1)
    assert adversarial_lines(good, 600, 1) != adversarial_lines(good, 600, 2)


def test_n_lines_good_records_in_order_and_no_line_end_inside(good: list[dict[str, Any]]) -> None:
    lines = adversarial_lines(good, 1000, 5)
    assert len(lines) == 1000
    assert all(b"\n" not in line for line in lines)
    dumped = [json.dumps(r, ensure_ascii=False).encode() for r in good]
    positions = [lines.index(d) for d in dumped]  # each good record is there, the first copy in order
    assert positions == sorted(positions)


def test_every_kind_of_hostile_line_is_there(good: list[dict[str, Any]]) -> None:
    lines = adversarial_lines(good, len(good) + len(HOSTILE_KINDS), 9)
    parsed = [parse_line(line) for line in lines]
    reasons = " | ".join(p.reason for p in parsed if isinstance(p, Rejected))
    for part in ("line too long", "byte-order mark", "blank", "not valid UTF-8", "nested deeper than 64"):
        assert part in reasons
    assert any(line == b"" for line in lines)  # an empty line: skipped, not counted
    assert any(line.endswith(b"\r") and isinstance(p, Record) for line, p in zip(lines, parsed, strict=True))
    big = [p for line, p in zip(lines, parsed, strict=True) if len(line) > 900_000 and isinstance(p, Record)]
    assert len(big) == 1 and len(lines[parsed.index(big[0])]) <= MAX_LINE_BYTES  # ~1 MB and valid
    ids = Counter(p.record_id for p in parsed if isinstance(p, Record))
    assert max(ids.values()) >= 2, "a repeated record_id"


def test_too_few_lines_for_the_good_records_is_refused(good: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="less than the 300 good records"):
        adversarial_lines(good, 10, 0)
    with pytest.raises(ValueError, match="at least one good record"):
        adversarial_lines([], 10, 0)


def test_the_command_writes_a_corpus_from_a_records_file(
    good: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in good), encoding="utf-8")
    main([str(records), str(tmp_path / "corpus.jsonl"), "--lines", "500", "--seed", "4"])
    assert (tmp_path / "corpus.jsonl").read_bytes() == b"".join(
        line + b"\n" for line in adversarial_lines(good, 500, 4)
    )
    assert "500 lines (300 good)" in capsys.readouterr().out
