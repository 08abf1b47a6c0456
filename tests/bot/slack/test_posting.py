"""Pacing of Slack calls (bot/slack/posting.py: ChannelPacer): a burst per channel, then in order."""

from __future__ import annotations

import asyncio
import time

from bot.slack.posting import ChannelPacer


def test_a_channel_takes_a_burst_then_is_paced_in_order() -> None:
    async def run() -> tuple[list[int], list[float]]:
        pacer = ChannelPacer(burst=2, per_second=20.0)
        order: list[int] = []
        times: list[float] = []
        start = time.monotonic()

        async def post(i: int) -> None:
            async with pacer.turn("C1"):
                order.append(i)
                times.append(time.monotonic() - start)

        await asyncio.gather(*(post(i) for i in range(5)))
        async with pacer.turn("C2"):  # another channel is not held up
            times.append(time.monotonic() - start)
        return order, times

    order, times = asyncio.run(run())
    assert order == [0, 1, 2, 3, 4]
    assert times[1] < 0.04 <= times[2] and times[4] >= 0.14
    assert times[5] - times[4] < 0.04


def test_a_key_of_its_own_pace_and_how_long_a_turn_would_wait() -> None:
    async def run() -> list[float]:
        pacer = ChannelPacer(burst=1, per_second=100.0, limits={"reactions.add": (2, 1.0)})
        seen = [pacer.delay("reactions.add")]  # never used: no wait
        for _ in range(2):  # the burst of two
            async with pacer.turn("reactions.add"):
                pass
        seen.append(pacer.delay("reactions.add"))  # the bucket is empty: about a second
        async with pacer.turn("C1"):  # a channel keeps the default pace
            seen.append(pacer.delay("C1"))
        return seen

    fresh, empty, channel = asyncio.run(run())
    assert fresh == 0.0 and 0.9 < empty <= 1.0 and channel <= 0.01
