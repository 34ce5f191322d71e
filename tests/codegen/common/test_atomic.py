"""Atomic writes: nothing half-written, and ordinary permissions on what is written."""

from __future__ import annotations

import os
import stat

import pytest

from codegen.common.atomic import staged_directory, write_bytes_atomic
from codegen.common.errors import UserError


def test_written_files_and_folders_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "f.bin", b"x")
        with staged_directory(tmp_path / "d") as tmp:
            (tmp / "inner").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert (tmp_path / "f.bin").read_bytes() == b"x" and (tmp_path / "d" / "inner").read_text() == "y"


def test_failed_stage_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_directory(tmp_path / "d") as tmp:
            (tmp / "half").write_text("z")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_needs_force(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("k")
    with pytest.raises(UserError, match="--force"):
        with staged_directory(tmp_path / "d"):
            pass
    with staged_directory(tmp_path / "d", force=True) as tmp:
        (tmp / "new").write_text("n")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["new"]
