"""A real terminal for tests of live views: a tmux session on a PRIVATE tmux server.

A private server (`tmux -L NAME`) matters: sessions of one shared server resize each other's
windows, and a view drawn for 160 columns then wraps and looks duplicated."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid


class Terminal:
    def __init__(self, command: str, width: int = 160, height: int = 50):
        if not shutil.which("tmux"):
            from tests.conftest import unavailable

            unavailable("tmux is not installed (apt-get install tmux)")
        self.name = "elf" + uuid.uuid4().hex[:10]
        # COLUMNS/LINES from the test environment would override the real terminal size.
        command = f"unset COLUMNS LINES; {command}"
        self._tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command, check=True)

    def _tmux(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.name, *args], capture_output=True, text=True, timeout=30,
                              check=check)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name).stdout

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The screen once `text` is on it (generous timeout: shared CI machines are slow)."""
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            out = self.screen()
            if text in out:
                return out
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on the terminal:\n{out}")

    def send_keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys, check=True)

    def close(self) -> None:
        self._tmux("kill-server")

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for_file(path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return path.read_text() if path.exists() else ""
