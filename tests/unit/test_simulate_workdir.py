"""simulate's work directory: removed after a run that finished, kept after one that could not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from popsync.exceptions import ServiceError
from popsync.simulate import RunOptions, _workdir

pytestmark = pytest.mark.unit


def test_a_finished_run_removes_its_temporary_workdir() -> None:
    with _workdir(RunOptions()) as path:
        (path / "ndxp.log").write_text("ok", encoding="utf-8")
    assert not path.exists()


def test_a_run_that_cannot_finish_keeps_its_workdir() -> None:
    kept: Path | None = None
    with pytest.raises(ServiceError), _workdir(RunOptions()) as path:
        kept = path
        (path / "worker-1.log").write_text("the reason", encoding="utf-8")
        raise ServiceError(f"timed out after 3600 s: 1 of 2 records have no outcome; see {path}")
    assert kept is not None and (kept / "worker-1.log").read_text(encoding="utf-8") == "the reason"
    shutil.rmtree(kept)
