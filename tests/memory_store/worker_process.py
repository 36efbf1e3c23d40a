"""A crash-test worker process (a script that forks a child per command), with its output lines readable
with a timeout."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path


class WorkerProcess:
    """Runs `script` with this Python; `send` a command line, read its answers with `next_line`. The
    script's store settings come from its commands only (no MEMORY_STORE_* variable reaches it)."""

    def __init__(self, script: Path) -> None:
        env = {name: value for name, value in os.environ.items() if not name.startswith("MEMORY_STORE_")}
        self.process = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def next_line(self, timeout_s: float = 120.0) -> str:
        try:
            return self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError("the crash-test worker stopped answering") from None

    def wait_for(self, prefix: str, timeout_s: float = 180.0) -> str:
        """The next line starting with `prefix` (earlier lines are dropped)."""
        while not (line := self.next_line(timeout_s)).startswith(prefix):
            pass
        return line

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
