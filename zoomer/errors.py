"""One error path for every app: a mistake is one line, a bug is a traceback in a log.

Exit 2: a Refusal (a setting, a file or a machine that cannot do what was asked), or the
machine's own state (a full disk, a directory that cannot be written: an OSError, named
with its path; memory), in one line. Exit 130 (Ctrl-C) and 143 (SIGTERM, which timeout,
SLURM and docker send): what is safe and how to go on; temporary files are removed and
ffmpeg is ended on the way out, as for Ctrl-C. Exit 141: the reader of the app's output
left early (`zoomer --help | head`), quietly. Exit 1: anything else is a bug, one line
saying so with the log file that holds its traceback. In a multirun every job reports
its own outcome and the others still run; the sweep ends with a summary (MultirunReport).
"""
from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import sys
import tempfile
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path

from hydra.experimental.callback import Callback

log = logging.getLogger("zoomer")

BUG = 1
USER_ERROR = 2
INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM
CLOSED_PIPE = 128 + signal.SIGPIPE
# Bytes written to a new output directory before any work: about what Hydra's own config
# files take, so a disk already full is named here and not in Hydra's traceback.
PROBE_BYTES = 64 * 1024


class Refusal(ValueError):
    """A mistake zoomer refuses, named in one line (exit 2). A ValueError, so Python
    callers that catch those keep working."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM, with what is safe: raised by `interruptible` in place of KeyboardInterrupt."""


@contextmanager
def interruptible(what_is_safe: str):
    """Turn Ctrl-C (or SIGTERM) inside the block into Interrupted(what_is_safe) for the user to read."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(what_is_safe) from None


def describe(error: BaseException) -> str:
    """One line for an ordinary failure; an OSError names its path."""
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    if isinstance(error, MemoryError):
        return f"out of memory: {error}"
    return str(error)


class _Terminated:
    """Whether SIGTERM arrived: it is raised as KeyboardInterrupt, so every cleanup that
    Ctrl-C runs (temporary files, ffmpeg) runs for it too; only the exit code differs."""

    received = False

    @classmethod
    def handle(cls, signum, frame) -> None:
        cls.received = True
        raise KeyboardInterrupt


_task_started = False  # set once Hydra has composed a config and handed it to an app


def run_reporting_errors(task, cfg):
    """Run task(cfg, run_dir) in Hydra's run directory, reporting failures as above."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    global _task_started
    _task_started = True

    logging.captureWarnings(True)  # a kernel's fallback warning reads as a log line
    if threading.current_thread() is threading.main_thread():  # where Python delivers signals
        signal.signal(signal.SIGTERM, _Terminated.handle)
    hydra = HydraConfig.get()
    try:
        return task(cfg, Path(hydra.runtime.output_dir))
    except BaseException as e:  # noqa: BLE001: each kind is reported below, none is lost
        code, line = _report(e)
    if hydra.mode == RunMode.MULTIRUN:  # the sweep goes on; MultirunReport sums up at its end
        job = f"job {hydra.job.num}"
        _print(f"zoomer: {job} ({' '.join(hydra.overrides.task)}): {line}")
        MultirunReport.failed.append((job, code))
        return None
    _print(f"zoomer: {line}")
    sys.exit(code)


def _report(error: BaseException) -> tuple[int, str]:
    """The exit code and the one line for a failure; a bug's traceback goes to a log file."""
    if isinstance(error, (Interrupted, KeyboardInterrupt)):
        message = str(error) or "interrupted; nothing was lost that had been written"
        what = "terminated (SIGTERM)" if _Terminated.received else "interrupted"
        log.warning("%s: %s", what, message)
        return (TERMINATED if _Terminated.received else INTERRUPTED), f"{what}: {message}"
    if isinstance(error, SystemExit):
        raise error
    if isinstance(error, (Refusal, OSError, MemoryError)):
        log.error("%s", describe(error))
        return USER_ERROR, f"error: {describe(error)}"
    where = _log_bug(error)
    return BUG, (f"bug: {type(error).__name__}: {error}. This is zoomer's fault, not yours; "
                 f"please report it with the traceback in {where}")


def _log_bug(error: BaseException) -> Path:
    """Write the traceback into the run's log file (Hydra's job log), or a temporary file."""
    text = "".join(traceback.format_exception(error))
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for handler in files:
        try:
            handler.stream.write(f"a bug; its traceback:\n{text}")
            handler.flush()
            return Path(handler.baseFilename)
        except (OSError, ValueError):
            continue
    fd, path = tempfile.mkstemp(prefix="zoomer-bug-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(path)


def _print(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):  # stderr closed: the exit code still tells
        pass


def _check_output_directory(directory: str) -> None:
    """Hydra creates the run directory and writes its config there before the app starts,
    so a path that cannot be created, or a disk already full, would end in Hydra's
    traceback; it is refused in one line first."""
    path, doing = Path(directory), "create"
    try:
        path.mkdir(parents=True, exist_ok=True)
        doing = "write to"
        fd, probe = tempfile.mkstemp(dir=path, prefix=".zoomer-space-")
        try:
            os.write(fd, bytes(PROBE_BYTES))
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        why = os.strerror(e.errno) if e.errno else str(e)
        hint = "; free some space or choose another hydra.run.dir" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        _print(f"zoomer: error: cannot {doing} the output directory {directory}: {why}{hint}")
        sys.exit(USER_ERROR)


class ConsoleHandler(logging.StreamHandler):
    """The console's log handler (conf/hydra/*_logging/zoomer.yaml), quiet once its reader
    is gone (`zoomer ... | head -1`): the stream's descriptor is pointed at /dev/null, so
    the render goes on and no log line, nor Python's last flush, ends in a BrokenPipe block."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], BrokenPipeError):
            return super().handleError(record)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())
        os.close(devnull)


def quiet_when_piped(app):
    """An app's entry point that ends quietly when its reader stops reading (`zoomer --help
    | head`): Hydra prints help and --cfg output itself, before the app runs, so a closed
    pipe would end in its traceback. Exit 141 (128 + SIGPIPE), as a shell reports for any
    tool whose reader left; stdout is pointed at /dev/null for Python's last flush. Hydra
    also exits 1 itself when it cannot compose the config (`video.width=abc`, `quality=best`):
    that is the user's mistake, so it leaves with 2, as every refusal does."""

    @functools.wraps(app)
    def run(*args, **kwargs):
        try:
            return app(*args, **kwargs)
        except SystemExit as e:
            if e.code == BUG and not _task_started:  # Hydra's own exit, before any app ran
                sys.exit(USER_ERROR)
            raise
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            sys.exit(CLOSED_PIPE)

    return run


class OutputDirectoryCheck(Callback):
    """A Hydra callback: the output directory is checked before Hydra writes into it."""

    def on_run_start(self, config, **kwargs) -> None:
        _check_output_directory(config.hydra.run.dir)

    def on_multirun_start(self, config, **kwargs) -> None:
        _check_output_directory(config.hydra.sweep.dir)


class MultirunReport(Callback):
    """A Hydra callback: at the end of a multirun, name every job that failed and exit 2
    (1 when one was a bug). Jobs report here when they run in this process (Hydra's basic
    launcher); under joblib or SLURM each job's own line is its report."""

    failed: list[tuple[str, int]] = []  # (job, exit code)
    jobs = 0

    def on_job_end(self, config, job_return, **kwargs) -> None:
        MultirunReport.jobs += 1

    def on_multirun_end(self, config, **kwargs) -> None:
        if not MultirunReport.failed:
            return
        _print(f"zoomer: {len(MultirunReport.failed)} of {MultirunReport.jobs} jobs failed "
               f"({'; '.join(job for job, _ in MultirunReport.failed)}); the others ran")
        sys.exit(BUG if any(code == BUG for _, code in MultirunReport.failed) else USER_ERROR)
