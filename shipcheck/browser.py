"""A real browser on the deployed frontend: headless Chromium (Debian's package) renders the
page with JavaScript, for a screenshot and the rendered DOM."""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path

from . import commands

# Flags for a closed network: without the background-networking ones Chromium keeps
# trying to reach Google's hosts.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,900", "--virtual-time-budget=8000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no Chromium: install Debian's `chromium` package (the set-up does: setup/setup.sh)")


def render(url: str, timeout_s: float = 90) -> tuple[str, str]:
    """(rendered DOM, screenshot as base64 PNG) of `url` after its scripts ran."""
    exe = chromium()
    with tempfile.TemporaryDirectory(prefix="shipcheck-chromium-") as tmp:
        shot = Path(tmp) / "page.png"
        profile = ["--user-data-dir=" + str(Path(tmp) / "profile")]
        dom = commands.run([exe, *FLAGS, *profile, "--dump-dom", url], timeout_s=timeout_s, what="rendering the page").stdout
        commands.run([exe, *FLAGS, *profile, f"--screenshot={shot}", url], timeout_s=timeout_s, what="screenshot")
        return dom, base64.b64encode(shot.read_bytes()).decode()
