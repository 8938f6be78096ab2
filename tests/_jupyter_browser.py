"""Browser tests as a user sees the notebooks: a JupyterLab server on 127.0.0.1 and Debian's
headless Chromium driven by chromedriver through Selenium. Everything stays on the loopback
interface and every wait is bounded.

    chromium, chromedriver = require_browser()      # installs via apt as root; else skips (fails under CI)
    with jupyter_lab(root_dir, state_dir) as lab, chromium_session(chromium, chromedriver, state_dir) as driver:
        driver.get(lab.url("lab/tree/notebook.ipynb"))
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from _ci import missing_dependency

REPO = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = REPO / ".ci" / "install_browser.sh"
# Without these Chromium tries to reach Google's services (updates, sync, field trials).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1500,1050")
T = TypeVar("T")


def require_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver. Missing and root: install them (.ci/install_browser.sh,
    apt). Still missing: skip with the reason, or fail under CI, where the test must run."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    installer = None
    if not all(found) and os.geteuid() == 0:
        installer = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
        found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found  # type: ignore[return-value]
    missing = " and ".join(n for n, p in zip(("chromium", "chromedriver"), found) if not p)
    if installer is None:
        why = "not root, so they cannot be installed"
    else:
        said = (installer.stderr.strip().splitlines() or [f"exit code {installer.returncode}"])[-1]
        why = f"{INSTALL_SCRIPT.name} could not install them: {said}"
    missing_dependency(f"{missing} missing ({why}); as root run `make browser` "
                       "(apt-get install chromium chromium-driver)")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, poll: float = 0.5,
             diagnostics: Callable[[], str] = lambda: "") -> T:
    """Poll `condition` until it returns something truthy; after `timeout` seconds fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}\n{diagnostics()}")
        time.sleep(poll)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LabServer:
    process: subprocess.Popen
    port: int
    token: str
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "--- jupyter lab log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def _request(self, path: str, method: str = "GET") -> int:
        request = urllib.request.Request(self.url(path), method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status
        except (urllib.error.URLError, OSError):
            return 0


@contextlib.contextmanager
def jupyter_lab(root_dir: Path, state_dir: Path, startup_timeout: float = 120) -> Iterator[LabServer]:
    """JupyterLab on 127.0.0.1 (a free port, a random token) serving root_dir, with its config,
    settings, workspaces and runtime files in state_dir, and nothing fetched from the internet
    (no news feed, no update check, no PyPI extension manager). Shut down (kernels included)
    on exit."""
    port, token = free_port(), secrets.token_hex(16)
    config = state_dir / "jupyter-config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({"LabApp": {
        "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate", "extension_manager": "readonly",
        "user_settings_dir": str(state_dir / "lab-settings"), "workspaces_dir": str(state_dir / "lab-workspaces")}}))
    # A fresh profile would ask which kernel to start (the notebook names python3: start it) and
    # whether to fetch Jupyter's news feed (no: offline).
    for plugin, values in (("apputils-extension/notification", {"fetchNews": "false"}),):
        settings = state_dir / "lab-settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps(values))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(state_dir / "jupyter-runtime"),
               IPYTHONDIR=str(state_dir / "ipython"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root_dir}"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root; the server refuses otherwise
    log_path = state_dir / "jupyter-lab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root_dir,
                                   start_new_session=True)
    server = LabServer(process, port, token, log_path)
    try:
        wait_for(lambda: process.poll() is not None or server._request("api/status") == 200, startup_timeout,
                 "jupyter lab to answer on 127.0.0.1", diagnostics=server.log_tail)
        if process.poll() is not None:
            raise AssertionError(f"jupyter lab exited with code {process.returncode}\n{server.log_tail()}")
        yield server
    finally:
        _stop_server(server)


def _stop_server(server: LabServer) -> None:
    """Ask the server to shut down (it stops its kernels first); kill its process group if it will not."""
    if server.process.poll() is None:
        server._request("api/shutdown", method="POST")
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, 9)
            server.process.wait(timeout=10)


@contextlib.contextmanager
def chromium_session(chromium: str, chromedriver: str, state_dir: Path) -> Iterator["object"]:
    """A Selenium session in headless Chromium with a fresh profile; chromedriver given by path,
    so Selenium Manager never runs (it would try to download a driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={state_dir / 'chromium-profile'}")
    # Debian's Chromium keeps crash reports and caches under XDG folders (~/.config, ~/.cache): keep them here.
    env = dict(os.environ, XDG_CONFIG_HOME=str(state_dir / "xdg-config"), XDG_CACHE_HOME=str(state_dir / "xdg-cache"))
    service = Service(executable_path=chromedriver, log_output=str(state_dir / "chromedriver.log"), env=env)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(90)
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()
