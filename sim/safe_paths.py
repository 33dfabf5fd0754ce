"""Paths users hand to portsim: names that become folders, files it reads, folders it writes.

- A name that becomes a folder (a scenario's or a sweep's ``name``) is one safe path
  component: letters, digits, ``.``, ``_``, ``-``, at most :data:`MAX_NAME` characters,
  not ``.`` or ``..``; so ``results/<name>/`` never leaves ``results/``.
- Input files (scenarios, sweeps, data files, result files) are read only when they are
  regular files, and at most a size cap: a FIFO, ``/dev/zero`` or a symbolic link loop is
  refused with one line instead of hanging, reading without end or a traceback.
- An output folder is checked before a run starts: it must be creatable and writable,
  and if it exists it must be a folder portsim wrote (or empty), because it is replaced.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from sim.atomic import OutputError, StagedFolder, describe_os_error, owned_folder

MAX_NAME = 100  # characters; file names of most file systems stop at 255 bytes
NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
MIB = 1 << 20
SCENARIO_LIMIT = 4 * MIB  # scenario and sweep files: text a person writes
DATA_LIMIT = 512 * MIB  # traces and lifetime samples
RESULT_LIMIT = 2048 * MIB  # files of a saved run (events.csv can be large)
RUN_MARKERS = ("summary.json",)
SWEEP_MARKERS = ("runs.csv", "sweep.json")


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a folder name, or None."""
    if not isinstance(name, str):
        return "expected a text name"
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME:
        return f"at most {MAX_NAME} characters (got {len(name)})"
    if not re.fullmatch(NAME_PATTERN, name):
        return "only letters, digits, '.', '_' and '-' (it names the results folder)"
    if name in (".", ".."):
        return "must not be '.' or '..' (it names the results folder)"
    return None


class InputFileError(Exception):
    """An input file that cannot be read; the message is one line naming it."""


def open_error(path: Path, exc: OSError) -> InputFileError:
    if exc.errno == errno.ELOOP:
        return InputFileError(f"{path}: a symbolic link loop")
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return InputFileError(f"{path}: a symbolic link to a missing file")
    return InputFileError(f"{path}: cannot read: {exc.strerror or exc}")


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; InputFileError otherwise.

    Opened non-blocking so that a FIFO cannot hang the open; checked with fstat on the
    opened file (no window between the check and the read)."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise open_error(path, exc) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputFileError(f"{path}: cannot read: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(
                f"{path}: cannot read: not a regular file (a device, FIFO or socket)"
            )
        if st.st_size > limit:
            raise InputFileError(f"{path}: too large ({_size(st.st_size)}; at most {_size(limit)})")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise InputFileError(f"{path}: too large (over {_size(limit)})")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise open_error(path, exc) from None
    finally:
        os.close(fd)


def _size(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n:,} bytes"


def regular_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not an existing regular file (following links), or None."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return str(open_error(Path(path), exc))
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a device, FIFO or socket"
        return f"{path}: not a regular file ({kind})"
    return None


# -- output folders -----------------------------------------------------------------------


def resolve_out(out: Path, flag: str = "--out") -> Path:
    """The folder a run is written to, checked: a symbolic link is followed to its folder
    (a dangling one or a loop is refused); nothing on the way may be a file."""
    try:
        st = os.lstat(out)
    except (FileNotFoundError, NotADirectoryError):  # the walk up says which part is a file
        st = None
    except OSError as exc:
        raise OutputError(f"{flag} {out}: {describe_os_error(exc)}") from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        try:
            os.stat(out)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError(f"{flag} {out}: a symbolic link loop") from None
            raise OutputError(
                f"{flag} {out}: a symbolic link to nowhere ({exc.strerror})"
            ) from None
        out = Path(os.path.realpath(out))
        st = os.stat(out)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{flag} {out}: exists and is not a directory")
    out = Path(os.path.abspath(out))  # "." and "..": a folder with a name and a parent
    if not out.name or out == out.parent:
        raise OutputError(f"{flag} {out}: the root cannot be a result folder")

    for parent in out.absolute().parents:
        try:
            pst = os.stat(parent)
        except (FileNotFoundError, NotADirectoryError):
            if os.path.islink(parent):
                raise OutputError(f"{flag} {out}: {parent} is a symbolic link to nowhere") from None
            continue
        except OSError as exc:
            raise OutputError(f"{flag} {out}: {parent}: {describe_os_error(exc)}") from None
        if not stat.S_ISDIR(pst.st_mode):
            raise OutputError(f"{flag} {out}: {parent} exists and is not a directory")
        break
    return out


def open_stage(
    out: Path, markers: Iterable[str] = RUN_MARKERS, flag: str = "--out"
) -> StagedFolder:
    """Check ``out`` and create its stage (so a read-only or full file system is found
    before the simulation, not after).  An existing ``out`` is replaced at the end only
    when it is empty or a folder portsim wrote (it holds one of ``markers``)."""
    target = resolve_out(out, flag)
    cwd = Path(os.path.abspath(os.curdir))
    if cwd == target or target in cwd.parents:
        raise OutputError(
            f"{flag} {out}: the folder is replaced by the run, and it holds the current "
            "directory; give a sub-folder"
        )
    if target.is_dir() and not owned_folder(target, markers):
        raise OutputError(
            f"{flag} {out}: the folder exists and holds files portsim did not write; "
            "give a new or empty folder (it is replaced by the run)"
        )
    try:
        return StagedFolder(target)
    except OSError as exc:
        where = exc.filename or target.parent
        raise OutputError(
            f"{flag} {out}: cannot write in {where}: {describe_os_error(exc)}"
        ) from None


def check_writable_dir(out: Path, flag: str = "--out") -> Path:
    """For outputs updated in place (a sweep's folder): create it now and prove it can
    be written, before any run starts."""
    import tempfile

    target = resolve_out(out, flag)
    if target.is_dir() and not owned_folder(target, SWEEP_MARKERS):
        raise OutputError(
            f"{flag} {out}: the folder exists and holds files portsim did not write; "
            "give a new or empty folder, or the folder of the same sweep to resume it"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target, prefix=".portsim-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{flag} {out}: cannot write: {describe_os_error(exc)}") from None
    return target
