"""An incremental server-sent-events parser (the WHATWG `text/event-stream` algorithm).

Pure: bytes in, `SSEEvent`s out, no I/O. Bytes may be split anywhere, including inside a UTF-8
sequence or between the `\\r` and `\\n` of a line ending; the events are the same however the
stream is chunked. Lines end with `\\n`, `\\r\\n` or `\\r`; lines starting with `:` are comments
(keep-alives); `data` lines accumulate, joined by `\\n`; a blank line dispatches the event.
"""

from __future__ import annotations

import codecs
import re

from headway.providers.base import SSEEvent

_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEParser:
    __slots__ = ("_buf", "_data", "_decoder", "_event", "_last_id", "_skip_lf", "_started", "retry")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""  # an incomplete line carried over to the next chunk
        self._data: list[str] = []
        self._event: str | None = None
        # Per the spec the last event id persists across events until a new `id` replaces it.
        self._last_id: str | None = None
        self._skip_lf = False  # the previous chunk ended with `\r`: a leading `\n` is its pair
        self._started = False  # the byte-order mark is only stripped at the very start
        #: the reconnection time (ms) the server asked for with a `retry` field, if any
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by this chunk, in order."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        buf = self._buf + text if self._buf else text
        if "\r" in buf:
            # A trailing `\r` ends its line now; remember to swallow a `\n` that may follow.
            self._skip_lf = buf[-1] == "\r"
            lines = _LINE_END.split(buf)
        else:
            lines = buf.split("\n")
        self._buf = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            if line:
                self._line(line)
            elif self._data:
                events.append(self._dispatch())
            else:
                self._event = None
        return events

    def flush(self) -> list[SSEEvent]:
        """Called when the byte stream ends. Complete `data` lines still waiting for their blank
        line are dispatched (servers that close right after `data: [DONE]\\n` are common); a
        final line cut off before its line ending is truncated, so it is dropped."""
        self._decoder.decode(b"", final=True)  # resets it; a partial character is truncated too
        self._buf = ""
        self._skip_lf = False
        if not self._data:
            self._event = None
            return []
        return [self._dispatch()]

    def _line(self, line: str) -> None:
        if line[0] == ":":
            return
        colon = line.find(":")
        if colon < 0:
            name, value = line, ""
        else:
            name = line[:colon]
            value = line[colon + 1 :]
            if value and value[0] == " ":
                value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(data="\n".join(self._data), event=self._event or None, id=self._last_id)
        self._data = []
        self._event = None
        return event
