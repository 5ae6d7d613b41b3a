"""The browser tests' harness: a JupyterLab server of its own, and what the tests share.

The server is started the way ``make lab`` starts it, over a scratch copy of the chapters (and
the student notebooks), with temporary Jupyter config, data, runtime, settings and workspace
folders, so nothing of the user's Jupyter home leaks in and nothing in the repository is
written. It listens on a free loopback port with a random token and is stopped by its PID.

Its kernels talk to it over Unix sockets (``KernelManager.transport=ipc``), not TCP. A TCP
kernel's five ports are drawn from the ephemeral range, the same range every outgoing loopback
connection takes its local port from, and are only claimed when the kernel binds them. When
seven kernels start at once, one port now and then is taken first (in 840 kernel starts, seven
at a time, one kernel died of ``Address already in use`` and one lost its heartbeat; in 420
over Unix sockets, none did). A restart keeps the same ports, so it does not always help: a
fresh-clone CI run failed on a kernel that stayed "starting" through one. ``make lab`` keeps
TCP, where a reader opens one notebook at a time.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright (``executable_path``): never
``playwright install``, which downloads a browser. Without Chromium or Playwright the tests
skip with a message; with ``CMLIB_UI_TESTS=1`` (set by ``.ci/run``) they fail instead.

Every wait is bounded; screenshots go to ``_build/screenshots/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("CMLIB_UI_TESTS") == "1"
#: JupyterLab's autosave interval in the tests, in seconds (its default is 120).
AUTOSAVE_SECONDS = 2


def missing(what: str):
    message = f"{what}; the browser tests need it (CI installs it, see .ci/run)"
    if REQUIRED:
        pytest.fail(message + " and CMLIB_UI_TESTS=1 makes this a failure")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(command: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """Start a server in a session of its own (so it and its kernels stop together), its output
    to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


class Lab:
    """A running JupyterLab: where it serves, its token, its scratch root and its PID."""

    def __init__(self, root: Path, home: Path):
        self.root, self.home = root, home
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = home / "server.log"
        self.runtime: Path | None = None

    def log_about(self, ids: list[str], lines: int = 40) -> str:
        """The server log's last ``lines`` lines that name one of ``ids`` or report an error
        (a kernel's own traceback lands in this log too)."""
        marks = (*ids, "Traceback", "Error", "error:", "Address already in use", "[E ")
        text = self.log.read_text().splitlines()
        found = [line for line in text if any(mark in line for mark in marks)]
        return "\n".join(found[-lines:])

    def url(self, path: str, workspace: str | None = None) -> str:
        """The lab URL of ``path`` (relative to the root), in a workspace of its own."""
        space = workspace or secrets.token_hex(4)
        return f"{self.base}/lab/workspaces/{space}/tree/{path}?token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 10.0):
        request = urllib.request.Request(
            f"{self.base}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def start(self, timeout: float = 90.0) -> None:
        dirs = {
            name: self.home / name.lower()
            for name in (
                "JUPYTER_CONFIG_DIR",
                "JUPYTER_DATA_DIR",
                "JUPYTER_RUNTIME_DIR",
                "JUPYTERLAB_SETTINGS_DIR",
                "JUPYTERLAB_WORKSPACES_DIR",
            )
        }
        # A Unix socket's path has at most 107 bytes, and pytest's scratch paths are long.
        self.runtime = Path(tempfile.mkdtemp(prefix="lab-"))
        dirs["JUPYTER_RUNTIME_DIR"] = self.runtime
        for folder in dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        docmanager = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "docmanager-extension"
        docmanager.mkdir(parents=True)
        (docmanager / "plugin.jupyterlab-settings").write_text(
            json.dumps({"autosave": True, "autosaveInterval": AUTOSAVE_SECONDS})
        )
        env = {
            **os.environ,
            **{k: str(v) for k, v in dirs.items()},
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "CMLIB_PROFILE": "cpu",
            "CMLIB_CACHE_DIR": str(self.home / "cache"),
        }
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--KernelManager.transport=ipc",
            f"--IdentityProvider.token={self.token}",
            "--LabApp.default_url=/lab/tree/chapters",
            "--LabApp.expose_app_in_browser=True",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.process = spawn(command, self.root, env, self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {self.process.returncode}:\n"
                    f"{self.log.read_text()[-3000:]}"
                )
            try:
                self.api("/api/status", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(
            f"JupyterLab did not answer in {timeout} s:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        self._stop()
        if self.runtime is not None:
            shutil.rmtree(self.runtime, ignore_errors=True)

    def _stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.api("/api/shutdown", method="POST", timeout=5)
            self.process.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            os.killpg(self.process.pid, sig)  # the server and the kernels it started
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue

    def set_autosave(self, on: bool) -> None:
        """Turn JupyterLab's autosave on or off (pages loaded afterwards read the setting)."""
        settings = {"autosave": on, "autosaveInterval": AUTOSAVE_SECONDS}
        body = json.dumps({"raw": json.dumps(settings)}).encode()
        request = urllib.request.Request(
            f"{self.base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin",
            data=body,
            method="PUT",
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def shutdown_kernels(self) -> None:
        """End every session (and its kernel), so that the next test starts clean."""
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")


class Voila:
    """A running Voilà app (``make studio``): one notebook served as a page, code hidden.

    It uses the repository's data cache, so the models ``make test`` saved are loaded, not
    trained again; isolated Jupyter folders as :class:`Lab`.
    """

    def __init__(self, notebook: Path, home: Path):
        self.notebook, self.home = notebook, home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        self.log = home / "voila.log"

    def start(self, timeout: float = 60.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.home / "config"),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "CMLIB_PROFILE": "cpu",
        }
        command = [
            sys.executable,
            "-m",
            "voila",
            str(self.notebook),
            "--no-browser",
            f"--port={self.port}",
            "--Voila.ip=127.0.0.1",
        ]
        self.process = spawn(command, ROOT, env, self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Voilà exited:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"Voilà did not listen in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            os.killpg(self.process.pid, sig)  # the server and its kernel
            try:
                self.process.wait(timeout=10)
                return
            except subprocess.TimeoutExpired:
                continue
