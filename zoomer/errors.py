"""One error path for every app: ordinary failures end with one clear line, not a traceback.

Exit 2: a setting that is not allowed or a condition the user can fix (no such GPU, a full
disk, a directory that cannot be written), named in one line. Exit 130: Ctrl-C, with what
is safe and how to go on. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from hydra.experimental.callback import Callback

log = logging.getLogger("zoomer")

USER_ERROR = 2
INTERRUPTED = 130


class Interrupted(Exception):
    """Ctrl-C, with what is safe: raised by `interruptible` in place of KeyboardInterrupt."""


@contextmanager
def interruptible(what_is_safe: str):
    """Turn Ctrl-C inside the block into Interrupted(what_is_safe) for the user to read."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(what_is_safe) from None


def describe(error: BaseException) -> str:
    """One line for an ordinary failure; an OSError names its path."""
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    return str(error)


def run_reporting_errors(task, cfg):
    """Run task(cfg, run_dir) in Hydra's run directory, reporting failures as above."""
    from hydra.core.hydra_config import HydraConfig

    logging.captureWarnings(True)  # a kernel's fallback warning reads as a log line
    try:
        return task(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (Interrupted, KeyboardInterrupt) as e:
        message = str(e) or "interrupted; nothing was lost that had been written"
        log.warning("interrupted: %s", message)
        print(f"zoomer: interrupted: {message}", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except (ValueError, RuntimeError, MemoryError, OSError) as e:
        log.error("%s", describe(e))
        print(f"zoomer: error: {describe(e)}", file=sys.stderr)
        sys.exit(USER_ERROR)


def _creatable(directory: str) -> None:
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"zoomer: error: cannot create the output directory {directory}: {describe(e)}", file=sys.stderr)
        sys.exit(USER_ERROR)


class OutputDirectoryCheck(Callback):
    """A Hydra callback: Hydra creates the run directory before the app starts, so a path
    that cannot be created would end in Hydra's traceback; it is refused in one line first."""

    def on_run_start(self, config, **kwargs) -> None:
        _creatable(config.hydra.run.dir)

    def on_multirun_start(self, config, **kwargs) -> None:
        _creatable(config.hydra.sweep.dir)
