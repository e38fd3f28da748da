"""The client's connection pool: the limit, fair queueing, idle expiry, closing; TLS; both loops."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from pathlib import Path

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from headway.errors import UpstreamError, UpstreamTimeout
from headway.providers.base import HttpCall
from headway.transport.http import Transport
from tests.transport.raw_server import RawRequest, RawServer, ok, response

CALL = HttpCall("POST", "/chat", {"q": 1})


class Gate:
    """Answers a request whose path is in `held` only once the test opens the gate."""

    def __init__(self, *held: str) -> None:
        self.held = set(held)
        self.opened = asyncio.Event()

    async def __call__(self, request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if request.path in self.held:
            await self.opened.wait()
        writer.write(response(request.path.encode()))


async def test_waiters_are_served_in_arrival_order(transport: Transport) -> None:
    gate = Gate("/first")
    server = await RawServer(gate).start()
    try:
        tasks = []
        for path in ("/first", "/a", "/b", "/c"):
            call = HttpCall("POST", path, {})
            tasks.append(
                asyncio.create_task(transport.request(call, server.url, {}, max_connections=1))
            )
            await asyncio.sleep(0)  # each one queues before the next is made
        await server.wait_for(lambda: len(server.requests) == 1)
        gate.opened.set()
        bodies = [r.body for r in await asyncio.gather(*tasks)]
        assert bodies == [b"/first", b"/a", b"/b", b"/c"]
        assert [r.path for r in server.requests] == ["/first", "/a", "/b", "/c"]
        assert server.connections == 1
    finally:
        await server.stop()


async def test_waiting_for_a_connection_has_the_request_deadline(transport: Transport) -> None:
    gate = Gate("/chat")
    server = await RawServer(gate).start()
    try:
        first = asyncio.create_task(transport.request(CALL, server.url, {}, max_connections=1))
        await server.wait_for(lambda: len(server.requests) == 1)
        with pytest.raises(UpstreamTimeout):
            await transport.request(CALL, server.url, {}, timeout=0.02)
        assert len(server.requests) == 1
        gate.opened.set()
        assert (await first).body == b"/chat"
        assert (await transport.request(CALL, server.url, {})).body == b"/chat"
        assert server.connections == 1
    finally:
        await server.stop()


async def test_a_cancelled_request_gives_its_slot_back(transport: Transport) -> None:
    gate = Gate("/hang")
    server = await RawServer(gate).start()
    try:
        hang = HttpCall("POST", "/hang", {})
        task = asyncio.create_task(transport.request(hang, server.url, {}, max_connections=1))
        await server.wait_for(lambda: len(server.requests) == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the half-answered connection is not reused: a new one carries the next request
        assert (await transport.request(CALL, server.url, {})).body == b"/chat"
        assert server.connections == 2
        assert transport.pool_stats(server.url).open == 1
    finally:
        await server.stop()


async def test_idle_connections_expire() -> None:
    transport = Transport(keepalive_timeout=0.01)
    server = await RawServer(ok).start()
    try:
        await transport.request(CALL, server.url, {})
        await server.wait_for(lambda: server.closed == 1)  # closed by the client's timer
        assert (await transport.request(CALL, server.url, {})).body == b"/chat"
        assert server.connections == 2
    finally:
        await transport.aclose()
        await server.stop()


async def test_closing_the_transport_fails_what_is_in_flight_and_waiting() -> None:
    transport = Transport()
    gate = Gate("/chat")
    server = await RawServer(gate).start()
    try:
        tasks = [
            asyncio.create_task(transport.request(CALL, server.url, {}, max_connections=1))
            for _ in range(2)
        ]
        await server.wait_for(lambda: len(server.requests) == 1)
        await transport.aclose()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            assert type(result) is UpstreamError
    finally:
        await server.stop()


async def test_ipv6_literal_hosts(transport: Transport) -> None:
    server = await RawServer(ok, host="::1").start()
    try:
        assert server.url == f"http://[::1]:{server.port}"
        assert (await transport.request(CALL, server.url, {})).body == b"/chat"
        assert server.requests[0].headers["host"] == f"[::1]:{server.port}"
    finally:
        await server.stop()


async def test_connect_timeout() -> None:
    # a listener that never accepts, with its queue full: the next handshake gets no answer
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    transport = Transport(connect_timeout=0.05)
    try:
        with pytest.raises(UpstreamTimeout):
            await transport.request(CALL, f"http://127.0.0.1:{port}", {}, timeout=30)
        assert transport.pool_stats(f"http://127.0.0.1:{port}").open == 0
    finally:
        await transport.aclose()
        for sock in (*fillers, listener):
            sock.close()


# ---- TLS -----------------------------------------------------------------------------------------


def _certificate(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_verifies_the_server(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = await RawServer(ok).start(ssl=server_ctx)
    trusting = ssl.create_default_context(cafile=str(cert))
    transport = Transport(ssl_context=trusting)
    default = Transport()
    try:
        url = f"https://127.0.0.1:{server.port}"
        for _ in range(2):
            assert (await transport.request(CALL, url, {})).body == b"/chat"
        assert server.connections == 1
        assert server.requests[0].headers["host"] == f"127.0.0.1:{server.port}"
        by_name = f"https://localhost:{server.port}"  # verified by name (SNI), not address
        assert (await transport.request(CALL, by_name, {})).body == b"/chat"
        assert server.requests[-1].headers["host"] == f"localhost:{server.port}"
        with pytest.raises(UpstreamError) as info:  # not in the system's trust store
            await default.request(CALL, url, {})
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    finally:
        await transport.aclose()
        await default.aclose()
        await server.stop()


# ---- event loops ---------------------------------------------------------------------------------


async def _scenario() -> list[bytes]:
    server = await RawServer(ok).start()
    transport = Transport()
    try:
        out = [(await transport.request(CALL, server.url, {})).body]
        async with transport.stream(CALL, server.url, {}) as up:
            out.append(b"".join([c async for c in up]))
        out.append(bytes([server.connections]))
        return out
    finally:
        await transport.aclose()
        await server.stop()


@pytest.mark.parametrize("factory", [uvloop.new_event_loop, asyncio.new_event_loop])
def test_runs_on_uvloop_and_on_the_default_loop(factory: object) -> None:
    with asyncio.Runner(loop_factory=factory) as runner:  # type: ignore[arg-type]
        assert runner.run(_scenario()) == [b"/chat", b"/chat", b"\x01"]
