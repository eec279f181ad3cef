"""The end-to-end tests' tools: the real server in a subprocess, raw HTTP, headless Chromium.

Also used by ``docs/screenshot.py``, which takes the README's picture of
the result page with the same browser set-up.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1000",
)


def browser_missing() -> str | None:
    """Why headless Chromium cannot be driven here (one line), or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the browser extra)"
    if not shutil.which("chromium"):
        return "chromium is not installed (apt-get install chromium chromium-driver)"
    if not os.access(CHROMEDRIVER, os.X_OK):
        return f"{CHROMEDRIVER} is missing (apt-get install chromium-driver)"
    return None


def chromium(profile: str | os.PathLike):
    """A headless Chromium driven by Debian's chromedriver: no driver download, no statistics, a fresh profile."""
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = shutil.which("chromium")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _default_sigint():
    # A shell's background job inherits SIGINT ignored; a server under test must see Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Server:
    """``python -m knn_genre.serve`` on a free port of 127.0.0.1, its temporary files under ``tmp``."""

    def __init__(self, model, tmp: Path, *args: str):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TMPDIR=str(self.tmp))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "knn_genre.serve", "--model", str(model), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        self.banner = self.proc.stdout.readline() if ready else ""
        if " on http://" not in self.banner:
            self.proc.kill()
            raise RuntimeError(f"the server did not start: {self.banner!r} {self.proc.stderr.read()!r}")
        self.url = self.banner.split(" on ", 1)[1].split()[0]
        self.host, port = self.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        self.port = int(port)

    def connection(self, timeout: float = 120) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 120):
        """``(status, headers, body bytes)`` of one request on a new connection."""
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def upload(self, files, path: str = "/api/predict", timeout: float = 120):
        """POST ``files`` ((name, bytes) pairs) as multipart; ``(status, decoded JSON or text)``."""
        body, content_type = multipart(files)
        status, headers, data = self.request("POST", path, body, {"Content-Type": content_type}, timeout)
        if headers.get("Content-Type", "").startswith("application/json"):
            return status, json.loads(data)
        return status, data.decode("utf-8", "replace")

    def leftovers(self) -> list[str]:
        """Files under the server's temporary folder (its upload folder's files included)."""
        return sorted(str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*") if p.is_file())

    def memory_kb(self) -> dict:
        """``VmRSS`` and ``VmHWM`` (peak) of the server process, in kB."""
        lines = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines) if k in ("VmRSS", "VmHWM")}

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> tuple[int, str]:
        """Send ``sig``; ``(exit status, stderr)``."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def multipart(files, field: str = "file") -> tuple[bytes, str]:
    """A multipart/form-data body with one part per ``(name, bytes)``; ``(body, content type)``."""
    boundary = uuid.uuid4().hex
    chunks = []
    for name, data in files:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{quoted}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode("utf-8") + data + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def wait_until(condition, timeout: float = 30, interval: float = 0.05) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def fresh_profile() -> str:
    """A new, empty Chromium profile folder (outside any server's temporary folder)."""
    return tempfile.mkdtemp(prefix="knn-genre-chromium-")
