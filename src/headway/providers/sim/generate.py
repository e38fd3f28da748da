"""What the simulated model says: deterministic, token-exact, and pure (no clock, no state).

The answer is derived from a hash of the conversation, so the same prompt always gets the same
answer, and it is built as a sequence of tokens, so usage is exact:

- Text answers are words drawn from a vocabulary of words that are single tokens in the chosen
  encoding (with and without a leading space, capitalised or not), so one piece is one token.
  Their length is derived from the prompt (`answer_tokens_min..max`) unless the last user message
  says `sim:tokens=N`, and is capped by `max_tokens` (finish reason `length`). A `stop` sequence
  ends the answer before the piece where it starts (finish reason `stop`).
- A trailing assistant message is a prefill: when it is a prefix (at a token boundary) of the
  answer the same conversation would get without it, the answer continues exactly where the
  prefill stops, so a cut stream resumed with its own text as prefill completes the original.
- Tool calls, when tools are offered and the prompt asks for one (`tool_choice` names a tool or is
  `required`, or the last user message mentions a tool's name); arguments are JSON with every
  required field of the schema. After a tool result the answer is text again.
- JSON modes (`response_format`) produce JSON text, tokenised with tiktoken.

Input tokens follow OpenAI's chat accounting: 3 tokens to prime the reply, and per message 3 tokens
+ its text (+1 with a `name`, +85 per image, + name and arguments of each tool call); each offered
tool adds its name, description and JSON schema.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from headway import tokens
from headway.errors import InvalidRequest
from headway.types import ChatRequest, FinishReason, ImagePart, Message, ToolSpec

PRIME_TOKENS = 3
MESSAGE_TOKENS = 3
NAME_TOKENS = 1
IMAGE_TOKENS = 85

_DIRECTIVE = re.compile(r"sim:tokens=(\d+)")

_WORD_LIST = (
    "the a of to and in is it that for on with as was at by this be from or have an are not but "
    "can one all will we there their what about which when make like time just know take people "
    "into year your good some could them see other than then now look only come its over think "
    "also back after use two how our work first well way even new want because any these give "
    "day most us answer question system model data value result example number point case part "
    "place world fact group problem hand level order form light word line story state night home "
    "water room area money study book eye job business issue side kind head house service friend "
    "power hour game city community name team minute idea body information school face health art "
    "history report member change moment air teacher force education age policy music market sense "
    "plan interest experience effect class control care field development role effort rate heart "
    "show leader voice mind price"
)
_WORDS = _WORD_LIST.split()


@dataclass(slots=True, frozen=True)
class Vocabulary:
    words: tuple[str, ...]  # " word"
    starts: tuple[str, ...]  # " Word", to open a sentence
    first: tuple[str, ...]  # "Word", to open the answer


@functools.cache
def vocabulary(encoding: str) -> Vocabulary:
    one = [
        w
        for w in _WORDS
        if tokens.count(" " + w, encoding) == 1
        and tokens.count(" " + w.capitalize(), encoding) == 1
        and tokens.count(w.capitalize(), encoding) == 1
    ]
    return Vocabulary(
        tuple(" " + w for w in one),
        tuple(" " + w.capitalize() for w in one),
        tuple(w.capitalize() for w in one),
    )


@dataclass(slots=True, frozen=True)
class PlannedCall:
    id: str
    name: str
    arguments: str
    name_tokens: int
    #: the arguments as streamed, one token per fragment (may be cut short by max_tokens)
    fragments: tuple[str, ...]

    @property
    def tokens(self) -> int:
        return self.name_tokens + len(self.fragments)


@dataclass(slots=True, frozen=True)
class Plan:
    """The whole answer, before any timing or failure is applied."""

    pieces: tuple[str, ...]  # text, one token per piece
    calls: tuple[PlannedCall, ...]
    finish_reason: FinishReason
    input_tokens: int
    prefill: str | None = None

    @property
    def output_tokens(self) -> int:
        return len(self.pieces) + sum(c.tokens for c in self.calls)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


# ---- input accounting ------------------------------------------------------------------------


def prompt_tokens(request: ChatRequest, encoding: str) -> int:
    count = tokens.get_encoding(encoding).encode_ordinary
    n = PRIME_TOKENS
    for m in request.messages:
        n += MESSAGE_TOKENS + len(count(m.text()))
        if m.name:
            n += NAME_TOKENS
        if isinstance(m.content, tuple):
            n += IMAGE_TOKENS * sum(1 for p in m.content if isinstance(p, ImagePart))
        for call in m.tool_calls:
            n += len(count(call.name)) + len(count(call.arguments))
    for tool in request.tools:
        n += len(count(tool.name)) + len(count(tool.description or ""))
        n += len(count(orjson.dumps(tool.parameters).decode()))
    return n


# ---- the answer ------------------------------------------------------------------------------


def _digest(*parts: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode())
        h.update(b"\x1f")
    return h.digest()


def conversation_key(messages: tuple[Message, ...], model: str, seed: int) -> bytes:
    parts = [str(seed), model]
    for m in messages:
        parts.append(f"{m.role}\x1e{m.text()}\x1e{m.tool_call_id or ''}\x1e{m.name or ''}")
        if isinstance(m.content, tuple):
            parts.extend(p.url for p in m.content if isinstance(p, ImagePart))
        parts.extend(f"{c.name}\x1e{c.arguments}" for c in m.tool_calls)
    return _digest(*parts)


def words(key: bytes, n: int, vocab: Vocabulary, *, opening: bool = True) -> list[str]:
    """`n` one-token pieces of sentence-like text seeded by `key`, ending with a full stop."""
    if n <= 0:
        return []
    stream = hashlib.shake_256(key).digest(2 * n)
    out: list[str] = []
    left = 0  # words left in the current sentence; -1: a sentence starts next
    for i in range(n - 1):
        r = int.from_bytes(stream[2 * i : 2 * i + 2], "big")
        if i == 0:
            pool = vocab.first if opening else vocab.starts
            out.append(pool[r % len(pool)])
            left = 4 + (r >> 8) % 10
        elif left == 0 and i < n - 2:
            out.append(".")
            left = -1
        elif left == -1:
            out.append(vocab.starts[r % len(vocab.starts)])
            left = 4 + (r >> 8) % 10
        else:
            out.append(vocab.words[r % len(vocab.words)])
            left = max(0, left - 1)
    if n == 1:
        return [vocab.first[stream[0] % len(vocab.first)] if opening else "."]
    out.append(".")
    return out


def _answer_length(request: ChatRequest, key: bytes, lo: int, hi: int) -> int:
    for m in reversed(request.messages):
        if m.role == "user":
            found = _DIRECTIVE.search(m.text())
            if found:
                return int(found.group(1))
            break
    hi = max(hi, lo)
    return lo + int.from_bytes(key[:4], "big") % (hi - lo + 1)


def token_pieces(text: str, encoding: str) -> tuple[str, ...]:
    """`text` split into its tokens, as strings (bytes of a split character are held back)."""
    enc = tokens.get_encoding(encoding)
    pieces: list[str] = []
    pending = b""
    for tok in enc.encode_ordinary(text):
        pending += enc.decode_single_token_bytes(tok)
        try:
            pieces.append(pending.decode())
        except UnicodeDecodeError:
            continue
        pending = b""
    if pending:
        pieces.append(pending.decode(errors="replace"))
    return tuple(pieces)


def fake_value(schema: dict[str, Any], key: bytes, vocab: Vocabulary) -> Any:
    """A value valid for a (simple) JSON schema: every required property is filled in."""
    r = int.from_bytes(key[:4], "big")
    if schema.get("enum"):
        options = schema["enum"]
        return options[r % len(options)]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        return {
            name: fake_value(props.get(name, {}), _digest(key.hex(), name), vocab)
            for name in schema.get("required", [])
        }
    if kind == "array":
        return []
    if kind == "integer":
        return r % 100 + 1
    if kind == "number":
        return round((r % 10_000) / 100, 2)
    if kind == "boolean":
        return r % 2 == 0
    if kind == "null":
        return None
    return vocab.first[r % len(vocab.first)]


def _chosen_tools(request: ChatRequest) -> list[ToolSpec]:
    choice = request.tool_choice
    if not request.tools or choice == "none" or request.messages[-1].role == "tool":
        return []
    if choice not in (None, "auto", "required"):
        for tool in request.tools:
            if tool.name == choice:
                return [tool]
        raise InvalidRequest(f"tool_choice names an unknown tool {choice!r}", param="tool_choice")
    last_user = next((m.text().lower() for m in reversed(request.messages) if m.role == "user"), "")
    chosen = [t for t in request.tools if t.name.lower() in last_user]
    if not chosen and choice == "required":
        chosen = [request.tools[0]]
    return chosen[:1] if request.parallel_tool_calls is False else chosen


def _until_stop(pieces: list[str], stops: tuple[str, ...]) -> list[str]:
    """The pieces before the first stop sequence (whole pieces only, to keep usage exact)."""
    text = "".join(pieces)
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if not found:
        return pieces
    limit, end, kept = min(found), 0, 0
    for piece in pieces:
        end += len(piece)
        if end > limit:
            break
        kept += 1
    return pieces[:kept]


def _cap(pieces: list[str], cap: int | None) -> tuple[list[str], bool]:
    if cap is not None and len(pieces) > cap:
        return pieces[:cap], True
    return pieces, False


def plan(
    request: ChatRequest,
    *,
    model: str,
    seed: int = 0,
    encoding: str = tokens.DEFAULT_ENCODING,
    answer_tokens: tuple[int, int] = (16, 128),
) -> Plan:
    """The answer `request` gets from `model`; raises InvalidRequest for an unusable tool_choice."""
    vocab = vocabulary(encoding)
    input_tokens = prompt_tokens(request, encoding)
    cap = request.max_tokens
    messages = request.messages
    prefill: str | None = None
    last = messages[-1]
    if last.role == "assistant" and not last.tool_calls and len(messages) > 1:
        prefill = last.text()
        messages = messages[:-1]
    key = conversation_key(messages, model, seed)

    calls = [] if prefill is not None else _chosen_tools(request)
    if calls:
        planned: list[PlannedCall] = []
        budget = cap
        truncated = False
        for i, tool in enumerate(calls):
            ckey = _digest(key.hex(), tool.name, str(i))
            args = orjson.dumps(fake_value({"type": "object", **tool.parameters}, ckey, vocab))
            name_tokens = tokens.count(tool.name, encoding)
            frags = token_pieces(args.decode(), encoding)
            if budget is not None:
                keep = max(0, budget - name_tokens)
                truncated = truncated or keep < len(frags)
                frags = frags[:keep]
                budget = max(0, budget - name_tokens - len(frags))
            call_id = f"call_{ckey.hex()[:24]}"
            planned.append(PlannedCall(call_id, tool.name, "".join(frags), name_tokens, frags))
        finish = FinishReason.LENGTH if truncated else FinishReason.TOOL_CALLS
        return Plan((), tuple(planned), finish, input_tokens)

    fmt = (request.response_format or {}).get("type")
    if fmt in ("json_object", "json_schema"):
        schema = (request.response_format or {}).get("json_schema", {}).get("schema")
        if fmt == "json_schema" and isinstance(schema, dict):
            value = fake_value(schema, key, vocab)
        else:
            value = {"answer": "".join(words(key, 8, vocab))}
        pieces = list(token_pieces(orjson.dumps(value).decode(), encoding))
    else:
        length = _answer_length(request, key, *answer_tokens)
        pieces = words(key, length, vocab)
    if prefill is not None:
        pieces = _continue(pieces, prefill, key, vocab, length=len(pieces))
    if request.stop:
        pieces = _until_stop(pieces, request.stop)
    pieces, truncated = _cap(pieces, cap)
    finish = FinishReason.LENGTH if truncated else FinishReason.STOP
    return Plan(tuple(pieces), (), finish, input_tokens, prefill)


def _continue(
    pieces: list[str], prefill: str, key: bytes, vocab: Vocabulary, *, length: int
) -> list[str]:
    """What follows `prefill`: the rest of the answer when the prefill is a prefix of it."""
    done = ""
    for i, piece in enumerate(pieces):
        if done == prefill:
            return pieces[i:]
        if not prefill.startswith(done + piece):
            break
        done += piece
    else:
        if done == prefill:
            return []
    # A prefill of the caller's own: continue it with text seeded by it as well.
    more = words(_digest(key.hex(), prefill), max(1, length // 2), vocab, opening=False)
    return more
