"""An incremental server-sent-events parser (the WHATWG `text/event-stream` algorithm).

Pure: bytes in, `SSEEvent`s out, no I/O. Bytes may be split anywhere, including inside a UTF-8
sequence or between the `\\r` and `\\n` of a line ending; the events are the same however the
stream is chunked. Lines end with `\\n`, `\\r\\n` or `\\r`; lines starting with `:` are comments
(keep-alives); `data` lines accumulate, joined by `\\n`; a blank line dispatches the event.

It works on bytes, not text, because it runs once per upstream stream event: the common frame
`data: {...}\\n\\n` costs one `find` and one slice, and its data goes to the wire decoder (and on
to orjson) without ever being decoded to `str`. That is exact, not a shortcut: every byte the
algorithm looks at (`\\r`, `\\n`, `:`, space) is ASCII, and UTF-8 never uses ASCII bytes inside
a multi-byte sequence, so splitting bytes gives the same fields as splitting decoded text, and a
character split across reads is simply still in the buffer. Only the rare `event` and `id`
values are decoded (invalid UTF-8 replaced, as a text decoder would).
"""

from __future__ import annotations

from headway.providers.base import SSEEvent

_BOM = b"\xef\xbb\xbf"
# Byte values, not one-byte strings, for membership tests: `b"\r" in data` first tries the
# needle as an integer and builds (then drops) a TypeError, ~3k instructions per test.
_CR = 13
_LF = 10
_COLON = 58


class SSEParser:
    __slots__ = ("_buf", "_last_id", "_scan", "_skip_lf", "_started", "retry")

    def __init__(self) -> None:
        # Bytes after the last dispatched event, line endings already normalised to `\n`: the
        # event still arriving (usually part of one line).
        self._buf = b""
        self._scan = 0  # where the search for the next blank line resumes in `_buf`
        # Per the spec the last event id persists across events until a new `id` replaces it.
        self._last_id: str | None = None
        self._skip_lf = False  # the previous chunk ended with `\r`: a leading `\n` is its pair
        self._started = False  # the byte-order mark is only stripped at the very start
        #: the reconnection time (ms) the server asked for with a `retry` field, if any
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by this chunk, in order."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
        if not chunk:
            return []
        if _CR in chunk:
            # Normalise to `\n` so that the rest only looks for one byte. A trailing `\r` ends
            # its line now; remember to swallow a `\n` that may start the next chunk.
            self._skip_lf = chunk[-1] == _CR
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf  # perhaps a byte-order mark still arriving
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        events: list[SSEEvent] = []
        pos = 0
        size = len(buf)
        end = buf.find(b"\n\n", self._scan)
        while end >= 0:
            block = buf[pos:end]
            if block[:6] == b"data: " and _LF not in block:
                # one data line, no other field: nearly every OpenAI and Gemini frame
                events.append(SSEEvent(block[6:], None, self._last_id))
            elif block:
                event = self._block(block)
                if event is not None:
                    events.append(event)
            pos = end + 2
            # a read usually ends with its event: no search for another
            end = buf.find(b"\n\n", pos) if pos < size else -1
        if pos == size:
            self._buf = b""
            self._scan = 0
            return events
        rest = self._buf = buf[pos:] if pos else buf
        # a blank line may start with the last byte kept: resume the search there next time
        self._scan = len(rest) - 1
        return events

    def data_only(self, chunk: bytes) -> bytes | None:
        """The data of `chunk` when it is exactly one event of one `data: ` line and the parser
        holds nothing (no partial event, no event id): nearly every OpenAI frame, read without
        building an `SSEEvent` or a list. The parser then is as `feed(chunk)` leaves it, which
        would have returned `[SSEEvent(data)]`. None, with nothing consumed: use `feed`."""
        if chunk[:6] != b"data: " or chunk[-1] != _LF or chunk[-2] != _LF:
            return None
        if self._buf or self._last_id is not None:
            return None
        raw = chunk[6:-2]
        if _LF in raw or _CR in raw:
            return None  # more lines, or line endings to normalise
        # starting with `data: `, the chunk has no byte-order mark and no `\n` to swallow
        self._started = True
        self._skip_lf = False
        return raw

    def flush(self) -> list[SSEEvent]:
        """Called when the byte stream ends. Complete `data` lines still waiting for their blank
        line are dispatched (servers that close right after `data: [DONE]\\n` are common); a
        final line cut off before its line ending is truncated, so it is dropped."""
        buf = self._buf
        self._buf = b""
        self._scan = 0
        self._skip_lf = False
        cut = buf.rfind(b"\n")
        if cut < 0:
            return []
        event = self._block(buf[:cut])
        return [] if event is None else [event]

    def _block(self, block: bytes) -> SSEEvent | None:
        """The event of one block of lines ended by a blank line (None: it had no data)."""
        data: list[bytes] = []
        name: str | None = None
        for line in block.split(b"\n"):
            if not line or line[0] == _COLON:
                continue  # an extra blank line (nothing to dispatch) or a comment
            colon = line.find(b":")
            if colon < 0:
                field, value = line, b""
            else:
                field = line[:colon]
                value = line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if field == b"data":
                data.append(value)
            elif field == b"event":
                name = value.decode("utf-8", "replace")
            elif field == b"id":
                if 0 not in value:
                    self._last_id = value.decode("utf-8", "replace")
            elif field == b"retry" and value.isdigit():
                self.retry = int(value)
        if not data:
            return None
        return SSEEvent(
            data[0] if len(data) == 1 else b"\n".join(data), name or None, self._last_id
        )
