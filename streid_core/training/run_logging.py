"""What a run leaves to read: `log.txt` (the lines printed), TensorBoard scalars and images,
and `config.json` (full configuration, git commit, package versions) written at start.

Named run_logging so it never shadows the standard library's `logging`. Only the main process
writes; on other ranks every method is a no-op, so callers need no rank checks.
"""
from __future__ import annotations

import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from ..atomic import write_json

_PACKAGES = ("streid", "torch", "torchvision", "numpy", "scipy", "pillow", "opencv-python", "h5py", "tqdm", "tensorboard")
LOG_NAME = "log.txt"
CONFIG_NAME = "config.json"
TENSORBOARD_DIR = "tensorboard"


def git_commit(path: Path) -> dict[str, Any] | None:
    """HEAD commit of the git checkout holding `path` and whether tracked files changed;
    None outside a checkout or without git (read-only git commands only)."""
    def run(*args: str) -> str | None:
        try:
            # --no-optional-locks: `status` must not refresh (write) the index of the checkout
            done = subprocess.run(["git", "--no-optional-locks", *args], cwd=path, capture_output=True, text=True,
                                  timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if not commit:
        return None
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_run_config(logs_dir: str | Path, config: dict[str, Any], **extra: Any) -> Path:
    """config.json: the configuration plus command line, time, git commit and package versions."""
    path = Path(logs_dir) / CONFIG_NAME
    write_json(path, {
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config,
        **extra,
        "git": git_commit(Path(__file__).resolve().parent),
        "packages": package_versions(),
    })
    return path


class RunLog:
    """Lines to stdout and log.txt, scalars and images to TensorBoard (main process only)."""

    def __init__(self, logs_dir: str | Path, enabled: bool = True, log_name: str = LOG_NAME,
                 tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.logs_dir = Path(logs_dir)
        self._file = None
        self._writer = None
        if not enabled:
            return
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        # a log is a stream: appended line by line (a resumed run continues the same file)
        self._file = open(self.logs_dir / log_name, "a", encoding="utf-8", buffering=1)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.logs_dir / TENSORBOARD_DIR))

    def line(self, text: str, echo: bool = True) -> None:
        """Append `text` to log.txt and (if `echo`) print it without breaking progress bars."""
        if not self.enabled:
            return
        if echo:
            from tqdm import tqdm

            tqdm.write(text)
        try:
            self._file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        except OSError as exc:  # a full disk: say which file could not be written
            exc.filename = exc.filename or self._file.name
            raise

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self._writer is None:
            return
        for key, value in values.items():
            self._writer.add_scalar(f"{prefix}/{key}", value, step)

    def image(self, tag: str, image, step: int) -> None:
        """A CxHxW tensor in [0, 1]."""
        if self._writer is not None:
            self._writer.add_image(tag, image, step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            handle, self._file = self._file, None
            try:
                handle.close()  # flushes what is left: fails again on a full disk
            except OSError as exc:
                exc.filename = exc.filename or handle.name
                raise
