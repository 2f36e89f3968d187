"""Real concurrent transactions for the race tests: each task on its own thread, so on its own connection."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

from giftcards import db

T = TypeVar('T')


def race(tasks: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run every task in its own thread (so on its own connection), all released at once by a barrier;
    answers each task's result or exception, in order. Each runs in a copy of the caller's context: in the scope the
    caller acts in (db.acting_as), as a request's work does."""
    barrier = threading.Barrier(len(tasks))
    results: list[T | BaseException] = [RuntimeError('did not run')] * len(tasks)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = tasks[i]()
        except BaseException as exc:  # reported to the test, which asserts on it
            results[i] = exc
        finally:
            db.reset_connections()

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run, i)) for i in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), 'a task hung'
    return results
