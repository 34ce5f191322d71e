"""Atomic writes: nothing half-written, and ordinary permissions on what is written."""

from __future__ import annotations

import os
import stat

import pytest

from codegen.common.atomic import (
    check_writable,
    read_json_object,
    staged_directory,
    write_bytes_atomic,
    write_files_atomic,
)
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


def test_a_folder_is_swapped_in_by_renames_and_a_crash_between_them_keeps_the_old_one(tmp_path, monkeypatch):
    """Replacing a folder renames the old one aside first; if the second rename fails, the old folder is put
    back (before, the old folder was deleted first, and a crash in between left neither)."""
    out = tmp_path / "d"
    out.mkdir()
    (out / "old").write_text("o")
    real_replace = os.replace
    calls = []

    def second_rename_fails(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_rename_fails)
    with pytest.raises(UserError, match="No space left on device"):
        with staged_directory(out, force=True) as tmp:
            (tmp / "new").write_text("n")
    monkeypatch.setattr(os, "replace", real_replace)
    assert [p.name for p in out.iterdir()] == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no staging or backup folder left behind
    assert calls[0][0] == out  # the old folder was moved aside, not deleted, before the new one came in


def test_several_files_are_all_staged_before_any_is_replaced(tmp_path, monkeypatch):
    import tempfile

    (tmp_path / "a").write_bytes(b"old a")
    (tmp_path / "b").write_bytes(b"old b")
    real = tempfile.mkstemp
    made = []

    def second_stage_fails(*args, **kwargs):
        if made:
            raise OSError(28, "No space left on device")
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", second_stage_fails)
    with pytest.raises(UserError, match="cannot write .*b: No space left on device"):
        write_files_atomic({tmp_path / "a": b"new a", tmp_path / "b": b"new b"})
    assert (tmp_path / "a").read_bytes() == b"old a" and (tmp_path / "b").read_bytes() == b"old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@pytest.mark.parametrize("where", ["/proc/delrec-edge-test/x/out.json", "/sys/delrec-edge-test/out.json"])
def test_unwritable_places_are_one_line_user_errors(where):
    with pytest.raises(UserError, match=f"cannot (create|write) {where.rsplit('/', 2)[0]}"):
        check_writable(where)
    with pytest.raises(UserError):
        write_bytes_atomic(where, b"x")


def test_check_writable_leaves_nothing_behind(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "file.json")
    check_writable(tmp_path / "folder", folder=True)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        check_writable(tmp_path / "file", folder=True)
    with pytest.raises(UserError, match="is a directory"):
        check_writable(tmp_path, folder=False)


@pytest.mark.parametrize("content, message", [(b"[1, 2]", "does not hold a JSON object"), (b"null", "JSON object"),
                                               (b"\xff\xfe", "not UTF-8"), (b"{x", "not valid JSON")])
def test_json_objects_are_read_strictly(tmp_path, content, message):
    (tmp_path / "m.json").write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_json_object(tmp_path / "m.json")
    with pytest.raises(UserError, match="is a directory"):
        read_json_object(tmp_path)
