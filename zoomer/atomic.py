"""Files that are either the old version or the complete new one, never half of either.

Every output (frames, videos, images, JSON) is written to a temporary file beside its final
name, flushed to disk, and renamed over the final name only once it is complete; the
directory is then flushed too, so the rename itself survives a power cut. An exception,
Ctrl-C or a full disk before that leaves the previous file as it was and removes the
temporary one. A process killed outright (kill -9) leaves its temporary file behind:
remove_stale() clears those whose writer is gone.

Temporary names are `.<final name>.tmp-<host>-<pid>-<random>[<extension>]`: hidden, and
naming the process that writes them, so a cleaner never takes a file a live writer (another
shard on a shared store, say) is still writing.
"""
from __future__ import annotations

import errno
import os
import re
import socket
import tempfile
import time
from pathlib import Path

# A temporary file whose writer is on another host is only taken for stale this long after
# its last change (we cannot ask that host whether the writer still runs).
FOREIGN_STALE_S = 24 * 3600
_TEMP = re.compile(r"^\..+\.tmp-(?P<host>[^-/]+)-(?P<pid>\d+)-[A-Za-z0-9_]+(\.\w+)?$")


class AtomicFile:
    """A temporary file beside `path` that becomes `path` on commit() or vanishes on discard().

        with AtomicFile(path) as out:      # commit on a clean exit, discard on any exception
            produce(out.temp)

    extension=True gives the temporary name path's extension too, for tools that pick a
    format by it.
    """

    def __init__(self, path, extension: bool = False):
        self.path = Path(path)
        prefix = f".{self.path.name}.tmp-{_host()}-{os.getpid()}-"
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=prefix, suffix=self.path.suffix if extension else "")
        os.close(fd)
        self.temp = Path(temp)

    def commit(self) -> None:
        """Flush the finished temporary file to disk, give it the permissions the umask
        allows (mkstemp makes it private) and rename it over the final name, durably."""
        try:
            _fsync(self.temp, os.O_RDONLY)
            os.chmod(self.temp, 0o666 & ~umask())
            os.replace(self.temp, self.path)
        except BaseException:
            self.discard()
            raise
        fsync_dir(self.path.parent)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_atomic(path, write) -> None:
    """Write a file through `write(binary_file)`, all or nothing (see the module doc). A
    write error (a full disk) names `path`, which the bare error from write() does not."""
    try:
        with AtomicFile(path) as out, open(out.temp, "wb") as f:
            write(f)
    except OSError as e:
        if e.filename is not None or e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e


def fsync_dir(directory) -> None:
    """Flush a directory's entries (a rename in it) to disk, where the filesystem can."""
    try:
        _fsync(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise


def remove_stale(directory) -> list[Path]:
    """Remove the temporary files in `directory` that no live writer will finish: those of a
    process on this host that no longer runs, and those from other hosts older than
    FOREIGN_STALE_S. Returns what was removed."""
    removed = []
    now = time.time()
    for entry in Path(directory).glob(".*.tmp-*"):
        match = _TEMP.match(entry.name)
        if match is None:
            continue
        try:
            if match["host"] == _host():
                stale = not _alive(int(match["pid"]))
            else:
                stale = now - entry.stat().st_mtime > FOREIGN_STALE_S
            if stale:
                entry.unlink()
                removed.append(entry)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
    return removed


def umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _host() -> str:
    """This host's name as it goes into temporary names (no dashes, which separate fields)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "localhost"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
