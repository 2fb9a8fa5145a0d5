"""Long-lived background tasks, supervised: a task that fails is restarted with back-off; one that keeps
failing for ``give_up_after_s`` makes the process unready and stops it, so that its own supervisor
(``circles dev up``, Kubernetes) restarts it.

Before this, a timer, the offset commit or a view's reader that met one exception (a 30 s timeout while
the broker was away) ended silently: escalations and digests stopped, rotated keys kept working in the
partner API, and ``/ready`` stayed green. Every such task now runs under ``supervise``; ``healthy()``
is part of every process's readiness.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

from services.runtime.logs import get_logger

log = get_logger(__name__)
GIVE_UP_AFTER_S = 120.0
"""How long a task may keep failing (every attempt) before the process gives up on it."""
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0

_given_up: list[str] = []


def _stop_process(name: str) -> None:
    """The default when a task cannot recover: stop this process as SIGTERM would (it exits, is restarted)."""
    os.kill(os.getpid(), signal.SIGTERM)


_on_give_up: Callable[[str], None] = _stop_process


async def together(*steps: Awaitable[object]) -> None:
    """Await independent start steps at once rather than one after another (issue 13: each is a Kafka
    client's connection, metadata and first fetches, so seconds on a loaded machine when taken in turn).
    Every step ends before the first failure, if any, is raised: none is left running unawaited."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def healthy() -> bool:
    """False once any supervised task of this process has been given up (readiness says no)."""
    return not _given_up


def on_give_up(callback: Callable[[str], None]) -> None:
    """What this process does when a task cannot recover (a worker stops itself with an error)."""
    global _on_give_up
    _on_give_up = callback


def supervise(
    name: str,
    step: Callable[[], Awaitable[None]],
    *,
    every: float = 0.0,
    give_up_after_s: float | None = None,
) -> asyncio.Task[None]:
    """Run ``step`` again and again (``every`` seconds apart) until cancelled. A step that raises is
    retried with back-off; when none has succeeded for ``give_up_after_s``, the process gives up."""
    return asyncio.create_task(_run(name, step, every, give_up_after_s), name=f"supervised:{name}")


async def _run(
    name: str, step: Callable[[], Awaitable[None]], every: float, give_up_after_s: float | None
) -> None:
    limit = GIVE_UP_AFTER_S if give_up_after_s is None else give_up_after_s
    failing_since: float | None = None
    delay = FIRST_DELAY_S
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            now = time.monotonic()
            failing_since = now if failing_since is None else failing_since
            log.warning(
                "background_task_failed",
                task=name,
                error=type(error).__name__,
                failing_s=round(now - failing_since, 1),
                retry_in_s=delay,
            )
            if now - failing_since >= limit:
                log.error("background_task_gave_up", task=name, error=type(error).__name__)
                _given_up.append(name)
                _on_give_up(name)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        if failing_since is not None:
            log.info("background_task_recovered", task=name)
        failing_since, delay = None, FIRST_DELAY_S
        await asyncio.sleep(every)
