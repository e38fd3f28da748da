"""The request and response values route handlers see. No framework: plain slotted classes.

A handler is `async def handler(req: Request) -> Response | StreamResponse`. It raises a
`HeadwayError` for anything that is not a success; the app turns it into the route's error shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from headway.context import ANONYMOUS, Principal, Served
from headway.errors import HeadwayError, InvalidRequest

Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
EVENT_STREAM = b"text/event-stream"


@dataclass(slots=True)
class Request:
    method: str
    path: str
    #: lower-cased header names; repeated headers are joined with ", " (RFC 9110)
    headers: Mapping[str, str]
    body: bytes
    request_id: str
    #: monotonic time (gateway clock) when the request arrived; deadlines are measured from it
    received: float
    path_params: dict[str, str] = field(default_factory=dict)
    query_string: bytes = b""
    principal: Principal = ANONYMOUS
    #: set by a handler that built a Call, so even an error answer carries what was served
    #: (rate-limit headers on a 429, the attempts behind a 502)
    served: Served | None = None

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string.decode("latin-1")))

    def json(self) -> Any:
        """The body as JSON; malformed JSON is the caller's error (400), never a 500."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise _malformed(exc) from exc

    def json_object(self) -> dict[str, Any]:
        # `json` inline: a call fewer on every chat request
        try:
            value = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise _malformed(exc) from exc
        if not isinstance(value, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        return value


def _malformed(exc: orjson.JSONDecodeError) -> InvalidRequest:
    return InvalidRequest(
        f"We could not parse the JSON body of your request: {exc}. "
        "Send a JSON object with Content-Type: application/json."
    )


# Built positionally on the hot paths (openai_routes): keep the field order.
@dataclass(slots=True)
class Response:
    body: bytes = b""
    status: int = 200
    content_type: bytes = JSON
    headers: Headers = field(default_factory=list)
    #: what the gateway did; becomes `x-headway-*` headers
    served: Served | None = None


def json_response(
    obj: Any, status: int = 200, *, served: Served | None = None, headers: Headers | None = None
) -> Response:
    return Response(orjson.dumps(obj), status, JSON, headers or [], served)


#: turns an error raised mid-stream into the bytes that tell the caller in-band
ErrorFrame = Callable[[HeadwayError], bytes]


@dataclass(slots=True)
class StreamResponse:
    """A streamed answer. Status and headers are sent before the first item of `chunks`, so do
    any work that can fail (such as pulling the first upstream chunk) before returning this.

    If `chunks` raises, the app writes `on_error(err)` and ends the response without any
    terminator of its own: a broken stream never ends like a complete one."""

    chunks: AsyncIterator[bytes]
    on_error: ErrorFrame
    status: int = 200
    content_type: bytes = EVENT_STREAM
    headers: Headers = field(default_factory=list)
    served: Served | None = None


Answer = Response | StreamResponse
