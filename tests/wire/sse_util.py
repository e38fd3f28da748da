"""Frame SSE bytes with headway's own incremental parser (transport/sse.py), as the providers do."""

from __future__ import annotations

from headway.providers.base import SSEEvent
from headway.transport.sse import SSEParser


def parse_sse(raw: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(raw) + parser.flush()
