from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headway.providers.base import SSEEvent
from headway.transport.sse import SSEParser


def parse(raw: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(raw) + parser.flush()


def parse_chunked(raw: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += parser.feed(raw[last:cut])
        last = cut
    events += parser.feed(raw[last:])
    return events + parser.flush()


def test_openai_style_data_events_and_done() -> None:
    raw = b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n'
    assert [e.data for e in parse(raw)] == ['{"a":1}', '{"a":2}', "[DONE]"]


def test_event_names_and_ids_are_reported() -> None:
    raw = b'event: message_start\nid: 7\ndata: {"x":1}\n\nevent: ping\ndata: {}\n\n'
    events = parse(raw)
    assert events[0] == SSEEvent(data='{"x":1}', event="message_start", id="7")
    # the last event id persists until replaced, as the WHATWG algorithm says
    assert events[1] == SSEEvent(data="{}", event="ping", id="7")


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_is_accepted(eol: bytes) -> None:
    raw = b"data: one" + eol + b"data: two" + eol + eol + b"data: three" + eol + eol
    assert [e.data for e in parse(raw)] == ["one\ntwo", "three"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert parse(b"data: a\ndata:\ndata: b\n\n")[0].data == "a\n\nb"


def test_comments_and_unknown_fields_are_ignored() -> None:
    raw = b": ping\n\nfoo: bar\ndata: x\n: keep-alive\n\n"
    assert parse(raw) == [SSEEvent(data="x")]


def test_only_one_leading_space_is_stripped_and_colonless_lines_are_fields() -> None:
    events = parse(b"data:  two spaces\n\ndata\n\n")
    assert [e.data for e in events] == [" two spaces", ""]


def test_event_without_data_is_not_dispatched_and_its_name_does_not_leak() -> None:
    raw = b"event: lonely\n\ndata: next\n\n"
    assert parse(raw) == [SSEEvent(data="next")]


def test_retry_field_is_recorded_only_when_numeric() -> None:
    parser = SSEParser()
    parser.feed(b"retry: 1500\n\nretry: soon\n\n")
    assert parser.retry == 1500


def test_id_with_nul_is_ignored() -> None:
    events = parse(b"id: a\x00b\ndata: x\n\n")
    assert events[0].id is None


def test_byte_order_mark_is_stripped_only_at_the_start() -> None:
    events = parse("\ufeffdata: x\n\ndata: \ufeffy\n\n".encode())
    assert [e.data for e in events] == ["x", "\ufeffy"]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    # the \n completes the \r\n pair; the next \r\n is the blank line that dispatches
    assert parser.feed(b"\n\r\n") == [SSEEvent(data="a")]


def test_multibyte_character_split_between_chunks() -> None:
    raw = "data: héllo 🌍\n\n".encode()
    cut = raw.index("🌍".encode()) + 2
    parser = SSEParser()
    assert parser.feed(raw[:cut]) == []
    assert parser.feed(raw[cut:]) == [SSEEvent(data="héllo 🌍")]


def test_flush_dispatches_complete_data_lines_but_drops_a_truncated_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]\n") == []
    assert parser.flush() == [SSEEvent(data="[DONE]")]
    parser = SSEParser()
    assert parser.feed(b'data: {"cut') == []
    assert parser.flush() == []


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert parse(b"data: \xff\n\n")[0].data == "\ufffd"


# ---- the bytes-level parser ---------------------------------------------------------------------


def test_data_is_kept_as_the_bytes_that_were_sent() -> None:
    raw = 'data: {"t":"héllo 🌍"}\n\n'.encode()
    (event,) = parse(raw)
    assert event.raw == '{"t":"héllo 🌍"}'.encode()
    assert event.data == '{"t":"héllo 🌍"}'
    assert event.json() == {"t": "héllo 🌍"}


@pytest.mark.parametrize("line", [b'data:{"a":1}', b'data: {"a":1}'])
def test_data_with_or_without_the_space(line: bytes) -> None:
    assert [e.raw for e in parse(line + b"\n\n")] == [b'{"a":1}']


def test_several_events_in_one_read_and_a_boundary_split_between_reads() -> None:
    parser = SSEParser()
    assert [e.raw for e in parser.feed(b"data: 1\n\ndata: 2\n\ndata: 3\n")] == [b"1", b"2"]
    assert [e.raw for e in parser.feed(b"\ndata: 4\n\n")] == [b"3", b"4"]
    assert parser.flush() == []


def test_reads_that_end_with_their_event_parse_as_one_read() -> None:
    # a read ending exactly at a blank line skips the search for another event: same events
    reads = [b"data: 1\n\n", b"data: 2\n\ndata: 3\n\n", b"data: 4\n", b"\n", b"id: 7\n\n"]
    parser = SSEParser()
    events = [e for read in reads for e in parser.feed(read)] + parser.flush()
    assert events == parse(b"".join(reads))
    assert [e.raw for e in events] == [b"1", b"2", b"3", b"4"]


def test_an_event_arriving_a_byte_at_a_time() -> None:
    raw = (
        b'event: delta\r\nid: 9\r\ndata: {"a":\r\ndata: "b"}\r\n: note\r\n\r\ndata: [DONE]\r\n\r\n'
    )
    parser = SSEParser()
    events = [e for i in range(len(raw)) for e in parser.feed(raw[i : i + 1])]
    assert events == [
        SSEEvent(data=b'{"a":\n"b"}', event="delta", id="9"),
        SSEEvent(data=b"[DONE]", id="9"),
    ]


def test_utf8_split_across_reads_stays_bytes_exact() -> None:
    raw = "data: ü€𝄞\n\n".encode()
    for cut in range(len(raw) + 1):
        parser = SSEParser()
        events = parser.feed(raw[:cut]) + parser.feed(raw[cut:]) + parser.flush()
        assert [e.raw for e in events] == ["ü€𝄞".encode()]


def test_byte_order_mark_split_across_reads_is_stripped() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef") == [] and parser.feed(b"\xbb") == []
    assert parser.feed(b"\xbfdata: x\n\n") == [SSEEvent(data="x")]


def test_comments_and_runs_of_blank_lines_make_no_events() -> None:
    raw = b": keep-alive\n\n\n\n: another\n\ndata: x\n\n\n\n\ndata: y\n\n"
    assert [e.raw for e in parse(raw)] == [b"x", b"y"]
    assert parse(b": only comments\n\n:\n\n") == []


def test_a_carriage_return_at_the_end_of_a_read() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\n\r") == [SSEEvent(data="a")]
    assert parser.feed(b"\ndata: b\r\r") == [SSEEvent(data="b")]  # \r\n was one line end


def test_invalid_utf8_in_json_data_is_replaced_not_fatal() -> None:
    (event,) = parse(b'data: {"t":"a\xffb"}\n\n')
    assert event.json() == {"t": "a\ufffdb"}
    (bad,) = parse(b"data: {nope\n\n")
    with pytest.raises(orjson.JSONDecodeError):
        bad.json()


def test_events_are_values() -> None:
    assert SSEEvent(data="x", event="e", id="1") == SSEEvent(b"x", "e", "1")
    assert SSEEvent(data="x") != SSEEvent(data="y")
    assert len({SSEEvent(data="x"), SSEEvent(b"x")}) == 1


# ---- properties ---------------------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"),
    max_size=12,
)
_events = st.lists(
    st.tuples(
        st.lists(_text, min_size=1, max_size=3),
        st.none() | _text.filter(lambda s: s != "" and not s.startswith(" ")),
        st.none() | _text,
    ),
    max_size=6,
)
_eols = st.sampled_from(["\n", "\r\n", "\r"])


def _serialise(events: list[tuple[list[str], str | None, str | None]], eol: str) -> bytes:
    out = []
    for data, name, ident in events:
        if name is not None:
            out.append(f"event:{name}{eol}")  # no space: the value is taken as is
        if ident is not None:
            out.append(f"id: {ident}{eol}")
        out.append(f": comment{eol}")
        out.extend(f"data: {line}{eol}" for line in data)
        out.append(eol)
    return "".join(out).encode()


@settings(max_examples=150, deadline=None)
@given(events=_events, eol=_eols, data=st.data())
def test_any_chunking_yields_the_same_events(
    events: list[tuple[list[str], str | None, str | None]], eol: str, data: st.DataObject
) -> None:
    raw = _serialise(events, eol)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    assert parse_chunked(raw, cuts) == parse(raw)


@settings(max_examples=200, deadline=None)
@given(events=_events, eol=_eols)
def test_serialised_events_round_trip(
    events: list[tuple[list[str], str | None, str | None]], eol: str
) -> None:
    parsed = parse(_serialise(events, eol))
    assert [e.data for e in parsed] == ["\n".join(d) for d, _, _ in events]
    assert [e.event for e in parsed] == [n for _, n, _ in events]
    last: str | None = None
    for event, (_, _, ident) in zip(parsed, events, strict=True):
        last = ident if ident is not None else last
        assert event.id == last


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200), data=st.data())
def test_arbitrary_bytes_never_raise_and_chunking_never_matters(
    raw: bytes, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    assert parse_chunked(raw, cuts) == parse(raw)


def parse_fast(chunks: list[bytes]) -> list[SSEEvent]:
    """What the HTTP provider does: `data_only` first, `feed` when it declines."""
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        raw = parser.data_only(chunk)
        events += [SSEEvent(raw)] if raw is not None else parser.feed(chunk)
    return events + parser.flush()


def test_data_only_takes_exactly_a_lone_data_line() -> None:
    parser = SSEParser()
    assert parser.data_only(b'data: {"a":1}\n\n') == b'{"a":1}'
    assert parser.data_only(b"data: \n\n") == b""
    for other in (
        b"data: a\ndata: b\n\n",  # two lines
        b"data: a\r\n\r\n",  # line endings to normalise
        b"data:a\n\n",  # no space: still an event, for `feed`
        b"data: a\n",  # not ended
        b"event: x\ndata: a\n\n",
        b": ping\n\n",
        b"",
    ):
        assert SSEParser().data_only(other) is None
    parser.feed(b"data: par")  # an event still arriving
    assert parser.data_only(b"data: b\n\n") is None
    with_id = SSEParser()
    with_id.feed(b"id: 7\ndata: x\n\n")  # the id would have to ride on the next events
    assert with_id.data_only(b"data: b\n\n") is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b'data: {"a":1}\n\n',
                b"data: [DONE]\n\n",
                b"data: x\n",
                b"\n",
                b"\r",
                b"\r\n\r\n",
                b": ping\n\n",
                b"id: 3\n",
                b"event: e\n",
                b"data: y",
                b"\xef\xbb\xbf",
                b"",
            ]
        ),
        max_size=12,
    )
)
def test_data_only_then_feed_gives_the_events_of_feed(chunks: list[bytes]) -> None:
    parser = SSEParser()
    plain = [e for chunk in chunks for e in parser.feed(chunk)] + parser.flush()
    assert parse_fast(chunks) == plain
