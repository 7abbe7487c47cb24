"""`popsync simulate --npd-url` and `POPSYNC_NPD_URL` reach the run's options (issue 12)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import popsync.simulate
from popsync.cli import app

pytestmark = pytest.mark.unit


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    monkeypatch.setattr(popsync.simulate, "simulate", lambda path, options, console: seen.append(options))
    monkeypatch.delenv("POPSYNC_NPD_URL", raising=False)
    return seen


def test_the_option_names_the_npd(captured: list[Any], tmp_path: Path) -> None:
    url = "postgresql://npd@db.example:5432/npd"
    result = CliRunner().invoke(app, ["simulate", str(tmp_path / "s.yaml"), "--npd-url", url])
    assert result.exit_code == 0, result.output
    assert captured[0].npd_url == url


def test_the_variable_names_it_too_and_none_means_sqlite(
    captured: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CliRunner().invoke(app, ["simulate", str(tmp_path / "s.yaml")]).exit_code == 0
    monkeypatch.setenv("POPSYNC_NPD_URL", "postgresql://npd@db.example/npd2")
    assert CliRunner().invoke(app, ["simulate", str(tmp_path / "s.yaml")]).exit_code == 0
    assert [options.npd_url for options in captured] == [None, "postgresql://npd@db.example/npd2"]
