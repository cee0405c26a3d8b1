"""A gateway SIGKILLed while an MPP session streams: the persisted voucher and spent are the
money truth after the restart, nothing was delivered that a voucher did not cover, and the
channel closes on chain for exactly what was spent."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
from pathlib import Path

import httpx

from bootstrap.platform import open_platform
from domain import topics
from domain.pricing import Usage, cost_micros
from domain.tokens import estimate_text_tokens
from infra.chain_memory import InMemoryChain
from infra.settings import MEMORY_ESCROW, PATH_USD, Settings
from tests.fakes.tempo_node import tempo_node
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import serving_app, write_catalog
from tests.integration.test_gateway_crash import gateway_process
from tests.integration.test_mpp import read_events
from tests.mpp_payer import TempoPayer, challenges

WORDS = " ".join(f"w{i}" for i in range(300))  # echo-slow: 30 ms a word


async def test_killed_mid_session_the_log_is_the_money_truth(
    platform_settings: Settings, upstream: FakeUpstream, tmp_path: Path
) -> None:
    chain = InMemoryChain(chain_id=4217, tokens=(PATH_USD,), escrow=MEMORY_ESCROW)
    catalog = write_catalog(tmp_path, upstream)
    # The same store as the process, opened here to read its log.
    platform = await open_platform(dataclasses.replace(platform_settings, models_file=catalog))
    payer = TempoPayer(chain)
    chain.mint(PATH_USD, payer.address, 10_000_000)
    body = {"model": "echo-slow", "stream": True, "messages": [{"role": "user", "content": WORDS}]}
    try:
        async with serving_app(tempo_node(chain)) as node:
            node += "/"
            env = {
                "PRYV_TEMPO_RPC_URL": node,
                "PRYV_MPP_ESCROW": MEMORY_ESCROW,
                "PRYV_MPP_ENV": "test",
            }
            received = ""
            async with (
                gateway_process(platform_settings, catalog, env) as (url, pid),
                httpx.AsyncClient(base_url=url, timeout=60) as http,
            ):
                unpaid = await http.post("/mpp/chat/completions", json=body)
                assert unpaid.status_code == 402, unpaid.text
                (challenge,) = challenges(unpaid)
                # The first voucher covers the prompt and part of the answer.
                channel, opening = await payer.open(challenge, 5_000, cumulative=700)
                async with http.stream(
                    "POST",
                    "/mpp/chat/completions",
                    json=body,
                    headers={"Authorization": opening},
                ) as response:
                    assert response.status_code == 200
                    async for event, data in read_events(response):
                        if event == "payment-need-voucher":
                            os.kill(pid, signal.SIGKILL)  # paused, waiting to be paid
                            break
                        if event == "message" and data != "[DONE]":
                            for choice in json.loads(data).get("choices") or []:
                                received += choice["delta"].get("content") or ""
            assert received, "nothing streamed before the pause"

            state = await asyncio.to_thread(platform.app.payment_channel, channel.channel_id)
            assert state is not None and state.accepted == 700
            model = platform.catalog.get("echo-slow")
            assert model is not None
            log = await asyncio.to_thread(platform.app.read_log, 0, 100_000)
            prompt = sum(e.data["tokens_in"] for e in log if e.topic == topics.CHANNEL_SPENT)
            delivered = cost_micros(model, Usage(prompt, estimate_text_tokens(received)))
            assert delivered <= state.spent <= state.accepted  # paid before it was sent

            async with (
                gateway_process(platform_settings, catalog, env) as (url, _pid),
                httpx.AsyncClient(base_url=url, timeout=60) as http,
            ):
                again = await http.post(
                    "/mpp/chat/completions", headers={"Authorization": payer.voucher(channel, 700)}
                )
                assert again.status_code == 200, again.text
                assert again.json()["spent"] == str(state.spent)  # the log, after the restart
                faucet = await http.post(
                    "/mpp/faucet", json={"address": payer.address, "amount": 1}
                )
                assert faucet.status_code == 404  # no free money on a real chain
                closed = await http.post(
                    "/mpp/chat/completions",
                    headers={"Authorization": payer.voucher(channel, state.spent, action="close")},
                )
                assert closed.status_code == 200, closed.text
            recipient = platform.tempo.recipient
            assert chain.balance(PATH_USD, recipient) == state.spent
            assert chain.balance(PATH_USD, payer.address) == 10_000_000 - state.spent
    finally:
        await platform.close()
