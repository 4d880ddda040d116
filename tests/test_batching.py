"""Batch sizes adapt to slow calls, and only the time a call spends on the wire counts."""

from __future__ import annotations

import asyncio

import httpx

from qatlan.apply.batching import SLOW_CALL_S, BatchSizer, send_split
from qatlan.clients import HttpClient


def test_a_slow_call_halves_the_batches_down_to_the_floor():
    sizer = BatchSizer(20, floor=5)
    for expected in (10, 5, 5):
        sizer.observe(SLOW_CALL_S + 1)
        assert sizer.size == expected


def test_batches_grow_back_after_a_run_of_fast_calls_but_not_past_the_configured_size():
    sizer = BatchSizer(20, floor=5, grow_after=3)
    sizer.observe(SLOW_CALL_S + 1)
    sizer.observe(SLOW_CALL_S + 1)
    assert sizer.size == 5
    for _ in range(2):
        sizer.observe(0.1)
    assert sizer.size == 5  # not yet: a run of three is needed
    sizer.observe(SLOW_CALL_S * 0.75)  # neither slow nor fast: the run goes on
    sizer.observe(0.1)
    assert sizer.size == 10
    for _ in range(9):
        sizer.observe(0.1)
    assert sizer.size == 20


def test_a_slow_call_in_a_run_of_fast_ones_starts_the_count_again():
    sizer = BatchSizer(20, floor=5, grow_after=3)
    sizer.observe(SLOW_CALL_S + 1)
    sizer.observe(0.1)
    sizer.observe(0.1)
    sizer.observe(SLOW_CALL_S + 1)
    sizer.observe(0.1)
    sizer.observe(0.1)
    assert sizer.size == 5


def test_a_calls_time_is_its_round_trip_not_its_wait_for_the_rate_limit():
    async def run() -> list[float]:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
        async with HttpClient("atlan", "https://tenant.atlan.com", "t", requests_per_minute=100,
                              transport=transport) as http:
            sent = []
            for i in range(3):  # each waits about 0.6 s for its turn
                sent += await send_split([i], lambda batch: http.request("POST", "/api/x"))
            return [s.seconds for s in sent]

    seconds = asyncio.run(run())
    assert all(s < 0.3 for s in seconds), seconds
