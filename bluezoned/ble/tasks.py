"""Small asyncio helpers shared by the scanner and the advertiser."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait until it has finished; nothing when it is None or the caller itself."""
    if task is None or task is asyncio.current_task():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Supervised:
    """The stop half of a service whose ``start`` spawns a supervisor task under ``_lock``.

    Subclasses set ``_lock`` and ``_task`` in ``__init__`` and implement ``_teardown``.
    """

    _lock: asyncio.Lock
    _task: asyncio.Task[None] | None

    async def stop(self) -> None:
        """Stop the supervisor and tear down; idempotent, never raises."""
        # Cancel first: a supervisor stuck in a slow (re)start holds the lock.
        await self._cancel_supervisor()
        async with self._lock:
            await self._cancel_supervisor()  # started meanwhile by a concurrent start()
            await self._teardown()

    async def _cancel_supervisor(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _teardown(self) -> None:
        raise NotImplementedError
