"""Issue 13 on the real broker: a 2026 labour scenario of the new Tuyên Quang, whose residents of the former
Hà Giang have not moved, run by `simulate` (workers told the date by STREAMS_AS_OF), then reported by the
34 current provinces and by the 63 legacy ones."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console
from simulate_oracle import assert_no_personal_data
from typer.testing import CliRunner

from connectors.generate import generate_records
from popsync.cli import app
from popsync.population import residents, scenario_population
from popsync.scenario import load_scenario
from popsync.simulate import RunOptions, run_scenario
from schemas.citizen import Citizen
from schemas.provinces import ProvinceMap, map_for

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "tuyen-quang-2026-labour.yaml"


def test_tuyen_quang_2026_counts_ha_giang_residents_as_not_moved(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    scenario = load_scenario(SCENARIO)
    assert scenario.as_of is not None and map_for(scenario.as_of) is ProvinceMap.CURRENT
    # What each record was made from, regenerated as simulate generates it (same seed, same records).
    population = scenario_population(scenario)
    citizens = [c for group in population.values() for c in group]
    made_from: dict[tuple[str, str], Citizen | None] = {}
    for index, source in enumerate(scenario.sources):
        assert source.generate is not None
        here, elsewhere = residents(population, source.province, ProvinceMap.CURRENT)
        truth: list[Citizen | None] = []
        records = generate_records(
            source.generate,
            sector="labour",
            province=source.province,
            citizens=here,
            other_citizens=elsewhere,
            seed=scenario.seed + index,
            truth_out=truth,
            provinces=ProvinceMap.CURRENT,
        )
        made_from.update(((source.province, r["record_id"]), c) for r, c in zip(records, truth, strict=True))

    envs: list[dict[str, str]] = []
    results, summary_path = tmp_path / "results.jsonl", tmp_path / "summary.json"
    options = RunOptions(
        bootstrap_servers=kafka_bootstrap,
        results=results,
        summary=summary_path,
        on_running=lambda run: envs.append(run.worker_env(1)),
        timeout_s=600,
        workdir=tmp_path / "run",
    )
    terminal = io.StringIO()
    outcome = run_scenario(SCENARIO, options, Console(file=terminal, width=140))
    assert envs and envs[0]["STREAMS_AS_OF"] == "2026-06-30"  # the workers learn the date
    assert outcome.problems == [], outcome.problems  # every `expect` figure of the scenario holds
    assert_no_personal_data(
        [terminal.getvalue(), *(p.read_text() for p in (tmp_path / "run").glob("*.log"))], citizens
    )

    # Per record: a resident of either former province is written (cleaned), whichever code the form
    # names; only a Thái Nguyên resident is moved.
    by_residence: Counter[tuple[str, str, str]] = Counter()
    for line in results.read_text(encoding="utf-8").splitlines():
        result = json.loads(line)
        citizen = made_from[result["province"], result["record_id"]]
        assert citizen is not None
        residence = "dead" if citizen.deceased else citizen.permanent_province
        by_residence[result["province"], residence, result["outcome"]] += 1
    for filed in ("008", "002"):
        for residence in ("008", "002"):
            assert by_residence[filed, residence, "unsynced/moved"] == 0
        assert by_residence[filed, "002", "cleaned"] > 500  # many forms of former Hà Giang residents
        assert by_residence[filed, "008", "cleaned"] > 500
    assert by_residence["008", "019", "unsynced/moved"] == 140
    assert by_residence["002", "019", "unsynced/moved"] == 40
    assert sum(by_residence.values()) == 7000

    # The report, both ways.
    def report(*args: str) -> str:
        result = CliRunner().invoke(app, ["report", str(summary_path), *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert json.loads(summary_path.read_text(encoding="utf-8"))["as_of"] == "2026-06-30"
    current = report("--lines", "--provinces", "current")
    assert report("--lines") == current  # a summary as of 2026: current provinces unless told otherwise
    assert current.strip() == (
        "Người lao động (008): 6.740/7.000 bản ghi đã làm sạch, đạt 96,29%; chưa đồng bộ 260 (3,71%)"
    )
    legacy = report("--lines", "--provinces", "legacy")
    assert legacy.strip().splitlines() == [
        "Người lao động (002): 1.940/2.000 bản ghi đã làm sạch, đạt 97,00%; chưa đồng bộ 60 (3,00%)",
        "Người lao động (008): 4.800/5.000 bản ghi đã làm sạch, đạt 96,00%; chưa đồng bộ 200 (4,00%)",
    ]
    markdown = report("--provinces", "current")
    assert "## Tuyên Quang (008)" in markdown and "Hà Giang" not in markdown
    assert "Số phiếu do Tổ công tác Đề án 06 cấp xã thu thập là: 7.000 phiếu." in markdown
    assert "chuyển nơi đăng ký thường trú: 260 phiếu, chiếm 3,71%." in markdown
    markdown = report("--provinces", "legacy")
    assert "## Hà Giang (002)" in markdown and "## Tuyên Quang (008)" in markdown
