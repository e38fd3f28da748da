"""What headway's client writes when: a command is written at the call (not when its reply is
awaited), a pre-encoded EVALSHA is the same bytes as the generic encoding, and a command
whose reply nobody awaits (`post`) reports its errors to its sink."""

from __future__ import annotations

import asyncio

import pytest

from headway.stores.redis import Detached, RedisClient, RedisError, RedisReplyError, Script
from headway.stores.resp import RedisUnavailable, encode, encode_tail
from tests.conftest import free_port


@pytest.fixture
def client(lean_redis: RedisClient) -> RedisClient:
    return lean_redis


async def test_a_command_is_written_when_it_is_made_not_when_awaited(client: RedisClient) -> None:
    unawaited = client.execute_command("SET", "k", "1")  # its reply is awaited only later
    assert await client.execute_command("GET", "k") == b"1"
    assert await unawaited == b"OK"


def test_a_pre_encoded_evalsha_is_what_encode_makes() -> None:
    script = Script("return 1")
    keys, args = ["{p}:a", "{p}:b"], ["reserve", "", "id1", "1 0 b 10 60.0 1"]
    whole = encode(("EVALSHA", script.sha, len(keys), *keys, *args))
    assert script.head(len(keys), len(args)) + encode_tail(keys, args) == whole
    assert encode_tail([b"raw", 7, 1.5]) == encode((b"raw", 7, 1.5))[len(b"*3\r\n") :]


async def test_a_script_runs_through_its_pre_encoded_head(client: RedisClient) -> None:
    script = Script("return ARGV[1] .. KEYS[1] .. KEYS[2]")
    assert await script.run(client, ["k1", "k2"], ["a"]) == b"ak1k2"  # EVAL, then cached
    assert await script.evalsha(client, ["x", "y"], ["b"]) == b"bxy"


async def test_a_posted_command_is_written_and_its_error_goes_to_the_sink(
    client: RedisClient,
) -> None:
    errors: list[RedisError] = []
    sink = Detached(errors.append)
    await client.ping()  # the connection is open
    assert client.post(encode(("SET", "s", "text")), sink)
    assert client.post(encode(("INCR", "s")), sink)  # an error reply, to nobody awaiting
    assert await client.execute_command("GET", "s") == b"text"  # replies stay in step
    assert len(errors) == 1 and isinstance(errors[0], RedisReplyError)
    assert "not an integer" in str(errors[0])


async def test_post_writes_nothing_on_a_connection_not_open(redis_url: str) -> None:
    client = RedisClient(redis_url)
    try:
        errors: list[RedisError] = []
        assert not client.post(encode(("SET", "k", "v")), Detached(errors.append))
        assert await client.execute_command("GET", "k") is None and errors == []
    finally:
        await client.aclose()


async def test_posted_commands_of_a_lost_connection_report_it() -> None:
    # a server that accepts and never answers, then goes away when told
    leave, arrived = asyncio.Event(), asyncio.Event()
    got: list[bytes] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while b"SET" not in b"".join(got):
            got.append(await reader.read(1 << 16))
            arrived.set()
        await leave.wait()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(silent, "127.0.0.1", port)
    client = RedisClient(f"redis://127.0.0.1:{port}/0")
    errors: list[RedisError] = []
    try:
        pinged = asyncio.ensure_future(client.ping())
        await arrived.wait()  # the connection is open and PING arrived; it waits for an answer
        assert client.post(encode(("SET", "k", "v")), Detached(errors.append))
        leave.set()
        with pytest.raises(RedisUnavailable):
            await pinged
        assert len(errors) == 1 and isinstance(errors[0], RedisUnavailable)
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
