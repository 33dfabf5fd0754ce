"""Writing files and result folders whole or not at all.

A file is written to a temporary name beside its target and renamed over it, and only
over a regular file (or nothing): a device, FIFO, socket or directory at the target is
refused, never replaced.  A result folder is written as a fresh hidden sibling (the
*stage*) and swapped in with one rename at the end; an earlier run in the folder stays
whole until the swap has happened, and is then removed.  Every exit path (an exception,
Ctrl-C, SIGTERM turned into :class:`Terminated` by :func:`terminate_as_exception`)
removes the stage; a stage left by a killed process (SIGKILL) is removed by the next
write into the same parent once its process is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

STAGE_MARK = ".portsim-"  # hidden siblings: .NAME.portsim-stage-PID-XXXX / -old-PID-XXXX
_STAGE_RE = re.compile(r"^\..*\.portsim-(?:stage|old)-(\d+)-[A-Za-z0-9_]+$")


class OutputError(Exception):
    """A result cannot be written where asked; the message is one line naming the path."""


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) received: unwinds like KeyboardInterrupt so cleanups run."""


def describe_os_error(exc: OSError) -> str:
    """``strerror`` of an OSError, with a hint for the common write failures."""
    text = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"{text} (the disk is full)"
    if exc.errno == errno.EROFS:
        return f"{text} (a read-only file system)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{text} (no permission)"
    return text


def check_target(path: Path) -> None:
    """Refuse a target that exists and is not a regular file (devices, FIFOs, sockets,
    directories): writing a result must never replace one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"{path}: {describe_os_error(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)
        except OSError as exc:
            raise OutputError(
                f"{path}: a symbolic link that leads nowhere usable ({exc.strerror})"
            ) from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{path}: exists and is not a regular file (a device, FIFO or socket)")


def write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory, then rename: whole or not at all.

    A symbolic link at ``path`` to a regular file is written through (its target is
    replaced), not replaced by a file."""
    path = Path(path)
    check_target(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: the folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write() names no file: name it
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


# -- folders ------------------------------------------------------------------------------


def _libc_renameat2() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _libc_renameat2() if hasattr(os, "fsencode") else None
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h: atomically exchange the two names


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths with one system call (Linux renameat2 RENAME_EXCHANGE);
    False where that is not available (other systems, some file systems)."""
    if _RENAMEAT2 is None:
        return False
    rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_stages(parent: Path) -> None:
    """Remove stages and old copies left behind by portsim processes that are gone."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        match = _STAGE_RE.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)


def owned_folder(path: Path, markers: Iterable[str]) -> bool:
    """An existing folder that portsim may replace: empty, or holding one of ``markers``
    (``summary.json`` of a run, ``runs.csv`` of a sweep)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return not names or any(m in names for m in markers)


class StagedFolder:
    """A result folder written aside and swapped in by :meth:`commit`.

    ``path`` is where files go while writing; after ``commit`` the folder is at the
    target.  ``replaced`` says whether an earlier folder was replaced."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.replaced = False
        parent = self.target.parent
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_stages(parent)
        self.path = Path(
            tempfile.mkdtemp(
                prefix=f".{self.target.name}{STAGE_MARK}stage-{os.getpid()}-", dir=parent
            )
        )
        os.chmod(self.path, 0o755)
        self.committed = False

    def commit(self) -> Path:
        """Put the stage at the target with one rename; the earlier folder, if any, is kept
        until that rename has happened, then removed.  Not after a signal (a run told to
        stop leaves the earlier folder as it was)."""
        raise_if_signalled()
        target = self.target
        if target.is_dir() and not target.is_symlink():
            if exchange(self.path, target):
                old = self.path  # now holds the earlier folder
            else:
                old = Path(
                    tempfile.mkdtemp(
                        prefix=f".{target.name}{STAGE_MARK}old-{os.getpid()}-", dir=target.parent
                    )
                )
                os.rename(target, old / "run")
                try:
                    os.rename(self.path, target)
                except BaseException:
                    os.rename(old / "run", target)
                    raise
            self.replaced = True
            self.committed = True
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(self.path, target)
            self.committed = True
        return target

    def discard(self) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[StagedFolder]:
    """``with staged_folder(out) as stage: write into stage.path; stage.commit()``; the
    stage is removed on any exit without a commit."""
    stage = StagedFolder(target)
    try:
        yield stage
    finally:
        stage.discard()


# Signals the handlers below received in this process, oldest first.  The handlers also
# raise, but that exception can be lost: a Cython-compiled module reports an exception
# raised while it registers its types with ``collections.abc`` as "unraisable" and goes on
# (Cython's ``__Pyx_Coroutine_patch_module``; numpy.random's first import does it), and a
# ``__del__`` or weakref callback swallows one likewise.  A SIGTERM landing there was lost
# and the run went on (once in CI; 4 of 40 SIGTERMs sent just as a run started, here).
# Hence :func:`raise_if_signalled` at each bin of a run, before a commit and as a command
# ends.
_received: list[int] = []


def _exception_for(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def record_signal(signum: int) -> None:
    """For a handler of its own (``sim.replay``): the signal is reported by
    :func:`raise_if_signalled` even if the handler's exception is swallowed."""
    _received.append(signum)


def raise_if_signalled() -> None:
    """Raise for a signal received inside :func:`terminate_as_exception` whose exception
    was swallowed on the way (see ``_received``).  Cheap: one list test."""
    if _received:
        raise _exception_for(_received[0])


def forget_signals() -> None:
    """The signals so far are reported (their exception was caught and turned into an exit
    code): :func:`raise_if_signalled` no longer raises for them."""
    _received.clear()


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise :class:`Terminated` and SIGINT (where
    Python's own handler is installed) :class:`KeyboardInterrupt`, so ``finally`` clauses
    (stage removal, workers' shutdown) run; each signal is also recorded, so one whose
    exception was swallowed is raised again at the next :func:`raise_if_signalled`.  A
    no-op outside the main thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        record_signal(signum)
        raise _exception_for(signum)

    # a signal the process was started ignoring stays ignored (``nohup`` ignores SIGHUP,
    # a shell's background job SIGINT); Python installs its own SIGINT handler otherwise
    signals = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) != signal.SIG_IGN]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signals.append(signal.SIGINT)
    saved = {}
    for sig in signals:
        saved[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
        forget_signals()
