"""Worker processes die with the server that started them.

BentoML starts each worker in a session of its own, so when ``bentoml serve`` (or the
``make serve`` group around it) is killed with SIGKILL, the workers kept serving on the port
and the next start failed with "Address already in use". Each worker watches its parent and
shuts down gracefully when it is gone (re-parented), hard after a grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)


def exit_with_parent(poll_seconds: float = 0.5, grace_seconds: float = 10.0) -> threading.Thread:
    """Start a daemon thread that ends this process once its parent process has died."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        log.warning("parent process %d is gone: shutting down worker %d", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_seconds)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread
