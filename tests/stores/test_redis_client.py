"""headway's own Redis client against a real redis-server: pipelining, replies of every kind,
scripts, pub/sub, and what callers see when Redis is down, breaks or stops answering."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from headway.errors import ConfigError, Unavailable
from headway.stores.redis import (
    NoScript,
    RedisClient,
    RedisReplyError,
    RedisUnavailable,
    Script,
    commands,
)
from headway.stores.resp import Incomplete, encode, parse
from tests.conftest import free_port


@pytest.fixture
def client(lean_redis: RedisClient) -> RedisClient:
    return lean_redis


async def test_replies_of_every_kind(client: RedisClient) -> None:
    assert await client.ping()
    assert await client.execute_command("SET", "k", b"\x00bin\r\nary", "PX", 60_000) == b"OK"
    assert await client.execute_command("GET", "k") == b"\x00bin\r\nary"
    assert await client.execute_command("GET", "missing") is None
    assert await client.execute_command("INCRBY", "n", 5) == 5
    await client.execute_command("HSET", "h", "a", 1.5, "b", "x")
    assert await client.execute_command("HMGET", "h", "a", "b", "c") == [b"1.5", b"x", None]
    big = b"v" * 3_000_000  # arrives over many reads
    await client.execute_command("SET", "big", big)
    assert await client.execute_command("GET", "big") == big


async def test_concurrent_commands_share_one_connection_and_keep_their_order(
    client: RedisClient, redis_url: str
) -> None:
    replies = await asyncio.gather(*(client.execute_command("INCR", "c") for _ in range(500)))
    assert replies == list(range(1, 501))
    admin = aioredis.from_url(redis_url)
    try:
        clients = await admin.client_list()
    finally:
        await admin.aclose()
    assert len(clients) == 2  # this client's one connection, and admin's


async def test_an_error_reply_fails_only_its_command(client: RedisClient) -> None:
    await client.execute_command("SET", "s", "text")
    results = await asyncio.gather(
        client.execute_command("INCR", "s"),
        client.execute_command("GET", "s"),
        return_exceptions=True,
    )
    assert isinstance(results[0], RedisReplyError) and "not an integer" in str(results[0])
    assert isinstance(results[0], Unavailable)  # the one error tree: a 503 if it escapes
    assert results[1] == b"text"


async def test_a_script_unknown_to_the_server_is_sent_once(client: RedisClient) -> None:
    script = Script("return ARGV[1] .. KEYS[1]")
    await client.execute_command("SCRIPT", "FLUSH")
    with pytest.raises(NoScript):
        await client.execute_command("EVALSHA", script.sha, 1, "k", "a")
    assert await script.run(client, ["k"], ["a"]) == b"ak"  # EVAL, which caches it
    assert await client.execute_command("EVALSHA", script.sha, 1, "k", "b") == b"bk"


async def test_a_database_in_the_url_is_selected(redis_url: str) -> None:
    other = RedisClient(redis_url.rsplit("/", 1)[0] + "/3")
    plain: Any = aioredis.from_url(redis_url)
    try:
        await other.execute_command("SET", "only-in-3", "x")
        assert await other.execute_command("GET", "only-in-3") == b"x"
        assert await plain.get("only-in-3") is None
    finally:
        await other.flushdb()
        await other.aclose()
        await plain.aclose()


def test_urls_are_read_like_redis_py() -> None:
    ep = RedisClient("rediss://u:p%40ss@cache.internal:6380/2").endpoint
    assert (ep.host, ep.port, ep.db, ep.username, ep.password, ep.tls) == (
        "cache.internal",
        6380,
        2,
        "u",
        "p@ss",
        True,
    )
    assert RedisClient("unix:///run/redis.sock?db=1").endpoint.unix_path == "/run/redis.sock"
    with pytest.raises(ConfigError):
        RedisClient("http://localhost:6379")


async def test_an_unreachable_server_fails_fast_during_the_backoff() -> None:
    client = RedisClient(f"redis://127.0.0.1:{free_port()}/0", max_backoff_s=60.0)
    with pytest.raises(RedisUnavailable, match="unreachable"):
        await client.execute_command("PING")
    with pytest.raises(RedisUnavailable, match="retrying shortly"):  # no new connect attempt
        await client.execute_command("PING")
    await client.aclose()


async def test_a_broken_connection_fails_what_waits_and_the_next_command_reconnects(
    client: RedisClient, redis_url: str
) -> None:
    await client.execute_command("PING")  # the connection is open
    # written at once, and answered never: a PING after it would wait behind it
    waiting = asyncio.ensure_future(client.execute_command("BLPOP", "never", 0))
    admin: Any = aioredis.from_url(redis_url)
    try:
        await admin.execute_command("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
    finally:
        await admin.aclose()
    with pytest.raises(RedisUnavailable, match="lost"):
        await waiting
    assert await client.ping()  # a new connection


async def test_a_server_that_stops_answering_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)  # reads the command, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = RedisClient(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    try:
        with pytest.raises(RedisUnavailable, match="did not answer"):
            await client.execute_command("PING")
    finally:
        await client.aclose()
        server.close()


async def test_a_cancelled_command_does_not_shift_the_replies(client: RedisClient) -> None:
    await client.execute_command("SET", "a", "1")
    first = asyncio.ensure_future(client.execute_command("GET", "a"))
    second = asyncio.ensure_future(client.execute_command("INCR", "a"))
    await asyncio.sleep(0)  # both are written
    first.cancel()
    assert await second == 2
    assert await client.execute_command("GET", "a") == b"2"


async def test_publish_and_subscribe(client: RedisClient, redis_url: str) -> None:
    sub = client.subscribe("news")
    await sub.start()
    other = RedisClient(redis_url)
    try:
        assert await other.execute_command("PUBLISH", "news", "hello") == 1
        messages = sub.messages()
        assert await anext(messages) == b"hello"
    finally:
        await sub.aclose()
        await other.aclose()


async def test_redis_py_clients_raise_the_same_errors(redis_url: str) -> None:
    wrapped = commands(aioredis.from_url(redis_url))
    try:
        with pytest.raises(NoScript):
            await wrapped.execute_command("EVALSHA", "0" * 40, 0)
        with pytest.raises(RedisReplyError):
            await wrapped.execute_command("NOSUCHCOMMAND")
    finally:
        await wrapped.aclose()
    down = commands(aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(RedisUnavailable):
        await down.execute_command("PING")
    await down.aclose()


def test_resp_round_trip_and_partial_input() -> None:
    assert (
        encode(["SET", b"k", 3, 1.5]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n3\r\n$3\r\n1.5\r\n"
    )
    reply = b"*3\r\n$2\r\nab\r\n:7\r\n*-1\r\n+OK\r\n"
    assert parse(reply, 0) == ([b"ab", 7, None], len(reply) - 5)
    for cut in range(1, len(reply) - 5):
        with pytest.raises(Incomplete):
            parse(reply[:cut], 0)
    error, _ = parse(b"-NOSCRIPT No matching script\r\n", 0)
    assert isinstance(error, NoScript)
    with pytest.raises(TypeError):
        encode(["SET", True])
