"""`python -m notes_api`: serve the API with uvicorn on port 8080, draining before shutdown.

Kubernetes sends SIGTERM while it is still removing the pod from the Service's endpoints,
so requests keep arriving for a moment; uvicorn alone would close its socket at once and
refuse them. So on SIGTERM the server keeps serving for `shutdown_delay_s` seconds
(SHUTDOWN_DELAY_S, default 5; /readyz answers 503 meanwhile), then shuts down as uvicorn
does: no new connections, open requests get up to 10 s. A second signal skips the delay.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import uvicorn

from . import main
from .settings import SettingsError, get_settings

PORT = 8080


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, delay_s: float):
        super().__init__(config)
        self.delay_s = delay_s
        self._drain_timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_timer is not None or self.delay_s <= 0 or self.should_exit:
            return super().handle_exit(sig, frame)
        main.DRAINING.set()
        print(f"{signal.Signals(sig).name}: serving {self.delay_s:g} s more before shutting down",
              file=sys.stderr, flush=True)
        self._drain_timer = threading.Timer(self.delay_s, super().handle_exit, args=(sig, frame))
        self._drain_timer.daemon = True
        self._drain_timer.start()


def run() -> int:
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    config = uvicorn.Config(main.app, host="0.0.0.0", port=PORT, timeout_graceful_shutdown=10,
                            log_level=settings.log_level.lower())
    DrainingServer(config, settings.shutdown_delay_s).run()
    return 0


if __name__ == "__main__":
    sys.exit(run())
