"""Retries for network trouble, 5xx and 408 only, with exponential backoff, within a time budget.

401/403/404/429 and bad files are not retried: another try would cost quota and answer the same.
"""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

from .errors import Unreachable, UpdateError

log = logging.getLogger("app.updater")
T = TypeVar("T")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, UpdateError) and exc.retryable


def with_retries(attempt: Callable[[], T], retry_for: float, first_wait: float = 2.0, max_wait: float = 60.0,
                 unreachable_for: float | None = None) -> T:
    """attempt() until it succeeds, raises a non-retryable error, or the next wait would pass
    retry_for; or, while the last failure was `Unreachable`, unreachable_for (when given)."""
    within_retry_for = stop_before_delay(retry_for)
    within_unreachable_for = stop_before_delay(retry_for if unreachable_for is None else min(unreachable_for, retry_for))

    def stop(state) -> bool:
        unreachable = isinstance(state.outcome.exception(), Unreachable)
        return (within_unreachable_for if unreachable else within_retry_for)(state)

    retrying = Retrying(
        retry=retry_if_exception(_retryable),
        stop=stop,
        wait=wait_exponential_jitter(multiplier=first_wait, max=max_wait, jitter=first_wait / 2),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "attempt %d failed: %s; retrying in %.1f s", state.attempt_number, state.outcome.exception(),
            state.next_action.sleep),
    )
    return retrying(attempt)
