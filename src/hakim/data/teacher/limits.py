"""Pacing: requests/min and tokens/min buckets and a shared pause after Retry-After."""

from __future__ import annotations

import asyncio
import time


class _Bucket:
    """Refills continuously up to one minute's allowance; may go negative when usage beats the estimate."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.updated = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        self.refill()
        return max(0.0, (min(amount, self.capacity) - self.level) / self.rate)


class RateLimiter:
    """Admits a request once both buckets hold enough and no Retry-After pause is running."""

    def __init__(self, requests_per_minute: int, tokens_per_minute: int):
        self._requests = _Bucket(requests_per_minute)
        self._tokens = _Bucket(tokens_per_minute)
        self._paused_until = 0.0
        # One waiter at a time keeps admission first-come first-served.
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        async with self._lock:
            while True:
                wait = max(
                    self._paused_until - time.monotonic(),
                    self._requests.wait_for(1),
                    self._tokens.wait_for(tokens),
                )
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._requests.level -= 1
            self._tokens.level -= tokens

    def settle(self, estimated: int, actual: int) -> None:
        """Charge the difference between the tokens reserved and those the server reported."""
        self._tokens.level -= actual - estimated

    def pause(self, seconds: float) -> None:
        """The server asked everyone to wait; no request is admitted before then."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
