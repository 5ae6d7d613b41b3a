"""Start a ``torchrun`` job from Python (a notebook, a test) with a time limit, and clean up.

``torchrun`` starts its workers as child processes. Killing only ``torchrun`` on a timeout would
leave them running (and holding the CPU), so the job gets its own process group, and the
whole group is stopped: SIGTERM first, SIGKILL if it does not go.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobResult:
    """What a finished (or stopped) job left: exit code, output, wall time."""

    returncode: int
    output: str
    seconds: float
    timed_out: bool

    def check(self) -> JobResult:
        """Raise ``RuntimeError`` with the output's tail if the job failed or ran out of time."""
        if self.timed_out or self.returncode != 0:
            why = "ran out of time" if self.timed_out else f"exited with {self.returncode}"
            raise RuntimeError(f"torchrun job {why}; its last output:\n{self.output[-3000:]}")
        return self


def torchrun_command(script: str | Path, args: Sequence[str], nproc_per_node: int) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node=N script args...``."""
    if (
        isinstance(nproc_per_node, bool)
        or not isinstance(nproc_per_node, int)
        or nproc_per_node < 1
    ):
        raise ValueError(f"nproc_per_node must be a positive int, got {nproc_per_node!r}")
    if not Path(script).is_file():
        raise FileNotFoundError(f"no script at {script}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc_per_node}",
        str(script),
        *map(str, args),
    ]


def run_torchrun(
    script: str | Path,
    args: Sequence[str] = (),
    nproc_per_node: int = 2,
    timeout_s: float = 300.0,
    env: dict[str, str] | None = None,
) -> JobResult:
    """Run ``script`` under ``torchrun`` and wait at most ``timeout_s`` seconds.

    Args:
        script: the training script.
        args: its command-line arguments.
        nproc_per_node: processes to start (one per GPU, or CPU ranks for gloo).
        timeout_s: the time limit; past it the whole job is stopped.
        env: extra environment variables.

    Returns:
        The :class:`JobResult` (call ``.check()`` to raise on failure).
    """
    command = torchrun_command(script, args, nproc_per_node)
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        output = _stop_group(process)
        timed_out = True
    return JobResult(process.returncode, output or "", time.perf_counter() - started, timed_out)


def _stop_group(process: subprocess.Popen) -> str:
    """Stop torchrun and its workers; return what they printed."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            output, _ = process.communicate(timeout=grace)
            return output
        except subprocess.TimeoutExpired:
            continue
    return ""
