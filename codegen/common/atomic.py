"""Write outputs so that a failure never leaves anything half-written behind.

Every writer here turns an ``OSError`` (read-only file system, permission denied, a path under ``/proc``, a
file where a folder should be, a full disk) into a one-line :class:`~codegen.common.errors.UserError` naming
the path, and cleans up its temporary files first:

* :func:`write_bytes_atomic` / :func:`write_json_atomic`: one file, through a temporary sibling and a rename;
* :func:`write_files_atomic`: several files of one folder, all staged before the first rename;
* :func:`staged_directory`: a whole folder, built aside and swapped in by renames;
* :func:`check_writable`: what a command calls before its work, so that an unwritable output is refused
  before anything runs or is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

from .errors import UserError


def _umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def os_error(path: Path | str, exc: OSError, action: str = "cannot write") -> UserError:
    """A one-line :class:`UserError` for ``exc`` raised while writing ``path``."""
    reason = exc.strerror or type(exc).__name__
    return UserError(f"{action} {path}: {reason}")


def _mkdirs(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(folder, exc, "cannot create") from None


def check_writable(path: Path | str, *, folder: bool = False) -> None:
    """Refuse, with one line, an output that cannot be written: ``path`` is the output file (its folder is
    created if needed and a probe file is written and removed there), or the output folder with ``folder``.

    Nothing else is left behind: a folder that did not exist is removed again.
    """
    path = Path(path)
    target = path if folder else (path.parent if str(path.parent) else Path("."))
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{path} exists and is not a directory")
    if not folder and path.is_dir():
        raise UserError(f"{path} is a directory, not a file")
    missing = [p for p in (target, *target.parents) if not p.exists()]
    _mkdirs(target)
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise os_error(target, exc) from None
    finally:
        for p in missing:  # innermost first: created only for the probe
            with contextlib.suppress(OSError):
                p.rmdir()


@contextlib.contextmanager
def staged_directory(out: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``out``; on success it takes the place of ``out``.

    On any exception the temporary directory is removed and ``out`` is untouched. An existing non-empty
    ``out`` is refused unless ``force`` is set; it is then swapped out by renames (``out`` -> a backup
    sibling, the new folder -> ``out``, the backup removed), so a crash in between leaves the old folder
    as the backup, never neither.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"{out} already exists and is not empty (use --force to replace it)")
    parent = out.parent if str(out.parent) else Path(".")
    _mkdirs(parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
        # mkdtemp makes the folder private (0700); the result should have ordinary permissions
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise os_error(parent, exc) from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        swap_in(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise os_error(out, exc) from None


def swap_in(new: Path, out: Path) -> None:
    """Put the folder ``new`` in the place of ``out`` by renames: the old ``out`` (if any) goes to a backup
    sibling first and is removed only after ``new`` has been renamed into place."""
    if not out.exists():
        os.replace(new, out)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(backup)  # only its unique name is needed: rename requires the target to be absent or empty
    os.replace(out, backup)
    try:
        os.replace(new, out)
    except OSError:
        os.replace(backup, out)  # put the old folder back
        raise
    shutil.rmtree(backup, ignore_errors=True)


def _stage(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary sibling of ``path``; returns its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file private (0600); the result should have ordinary permissions
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_files_atomic(files: Mapping[Path, bytes]) -> None:
    """Write several files (of one folder, typically) so that none is replaced unless all were written.

    Every file is written to a temporary sibling first; only then are they renamed into place, in order.
    A failure while staging leaves every target untouched.
    """
    staged: list[tuple[str, Path]] = []
    current = None
    try:
        for current, data in files.items():
            current = Path(current)
            _mkdirs(current.parent)
            staged.append((_stage(current, data), current))
        for tmp, current in staged:
            os.replace(tmp, current)
    except OSError as exc:
        raise os_error(current, exc) from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    write_files_atomic({Path(path): data})


def json_bytes(obj: object) -> bytes:
    """``obj`` as sorted, indented JSON (stable bytes for the same content), UTF-8, newline-terminated."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_json_atomic(path: Path, obj: object) -> None:
    """Write ``obj`` as sorted, indented JSON (stable bytes for the same content)."""
    write_bytes_atomic(path, json_bytes(obj))


def read_json_object(path: Path | str, what: str = "") -> dict:
    """The JSON object (dict) in ``path``; a one-line :class:`UserError` for a missing, unreadable, non-UTF-8,
    invalid or non-object file (``[1, 2]``, ``null``) or a directory."""
    path = Path(path)
    label = f"{what} {path}".strip()
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{label} is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise UserError(f"{label} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{label} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise os_error(path, exc, "cannot read") from None
    if not isinstance(obj, dict):
        raise UserError(f"{label} does not hold a JSON object (found {type(obj).__name__})")
    return obj
