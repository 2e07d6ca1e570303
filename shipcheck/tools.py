"""Where the set-up's tools and caches are: one place for every module that needs helm,
kubectl, kind or a cache directory.

Set-up (setup/*.sh) builds pinned tools into $SHIPCHECK_CACHE/bin (default
~/.cache/shipcheck/bin); a tool on PATH wins, so a user's own helm or kubectl is used as is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping


class ToolNotFound(FileNotFoundError):
    """A tool is neither on PATH nor in the set-up's cache."""


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where set-up and the suite keep what they build: $SHIPCHECK_CACHE, else ~/.cache/shipcheck."""
    env = os.environ if env is None else env
    return Path(env.get("SHIPCHECK_CACHE") or str(Path(env.get("HOME") or Path.home()) / ".cache" / "shipcheck"))


def cache_bin_dir(env: Mapping[str, str] | None = None) -> Path:
    return cache_dir(env) / "bin"


def binary(name: str, env: Mapping[str, str] | None = None) -> str:
    """A set-up tool (helm, kubectl, kind): on PATH, else in the cache's bin directory."""
    env = os.environ if env is None else env
    found = shutil.which(name, path=env.get("PATH"))
    if found:
        return found
    cached = cache_bin_dir(env) / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    raise ToolNotFound(f"{name} not found on PATH nor at {cached}. Fix: run `./pipeline setup` (it installs the pinned "
                       f"{name} into that directory), or put {name} on PATH.")
