"""Gemini thought signatures, carried to the caller and back inside tool-call ids.

Newer Gemini models attach an opaque `thoughtSignature` to the `functionCall` parts they return
and reject a later request whose earlier model turn comes back without it (providers.md 5.2:
"it must be echoed back unchanged on later turns"). headway keeps no conversation state (any
replica may serve the next turn; the caller holds the conversation), and the OpenAI and
Anthropic wires have no field for it. The one value every caller echoes back verbatim with a
call is its id (OpenAI `tool_calls[].id` then `tool_call_id`, Anthropic `tool_use.id` then
`tool_use_id`), so the signature travels in the id, as other gateways do:

    <id>__ts<kind>_<payload>

`<id>` is Gemini's `functionCall.id` or headway's synthesised `call_hw…` id. Kind `b` (what the
API sends: a proto `bytes` field, standard base64): the payload is the same text in the URL-safe
alphabet without `=` padding, so the id grows by at most the signature's length plus 6 and stays in
`[A-Za-z0-9_-]`, the pattern Anthropic requires of `tool_use` ids. Kind `u`, for any other
string: URL-safe base64 of its UTF-8, unpadded. Both decode to the exact string Gemini sent.
An id without the separator, or with a payload that does not decode, is a plain id, used as
is: ids from callers are never an error. Gemini only ever sees the clean id (`functionCall.id`
and `functionResponse.id`, when it issued one) and `thoughtSignature` on the `functionCall` part.

Signatures on text parts are dropped: an OpenAI or Anthropic text reply has no id or other
field a caller echoes back verbatim. providers.md 5.2 does not tell parts apart, but the check
Gemini enforces is on function calls (its 400 reads "Function call is missing a
thought_signature in functionCall parts"; only the first of parallel calls is signed); a text
turn without its signature is accepted, with possibly less continuity of the model's reasoning.
Another upstream (a fallback) gets the long id as it is: ids are opaque strings to them.
"""

from __future__ import annotations

import base64
import binascii
import functools

SEPARATOR = "__ts"
_DIGITS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_STANDARD = _DIGITS + b"+/"
_URL_SAFE = _DIGITS + b"-_"


def _only(text: str, alphabet: bytes) -> bool:
    # deleting the alphabet leaves nothing: one C pass, cheaper than a regex or a strict
    # base64 decode (5.8k vs 9.7k vs 13.4k instructions for a 320-character signature)
    return text.isascii() and not text.encode().translate(None, alphabet)


def attach(call_id: str, signature: str) -> str:
    """`call_id` with `signature` carried in it; `call_id` unchanged when there is none or when
    the id itself holds the separator (it could not be split back unambiguously)."""
    if not signature or not call_id or SEPARATOR in call_id:
        return call_id
    body = signature.rstrip("=")
    # padded standard base64 (what the API sends) maps to URL-safe and back without loss
    if len(signature) % 4 == 0 and len(signature) - len(body) <= 2 and _only(body, _STANDARD):
        return f"{call_id}{SEPARATOR}b_{body.replace('+', '-').replace('/', '_')}"
    packed = base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")
    return f"{call_id}{SEPARATOR}u_{packed}"


# Every request of a conversation resends its history, so the same ids come back turn after
# turn: a hit costs a hash of the id instead of a validation pass over the signature.
@functools.lru_cache(maxsize=4096)
def split(call_id: str) -> tuple[str, str | None]:
    """(the id Gemini knows, the signature or None). Anything malformed is a plain id."""
    head, sep, tail = call_id.partition(SEPARATOR)
    if not sep or not head or len(tail) < 3 or tail[1] != "_":
        return call_id, None
    kind, payload = tail[0], tail[2:]
    if len(payload) % 4 == 1 or not _only(payload, _URL_SAFE):  # 1 left over: not base64
        return call_id, None
    standard = payload.replace("-", "+").replace("_", "/") + "=" * (-len(payload) % 4)
    if kind == "b":
        return head, standard
    if kind == "u":
        try:
            return head, binascii.a2b_base64(standard).decode()
        except ValueError:  # not UTF-8 (or, defensively, not base64)
            return call_id, None
    return call_id, None


def clean(call_id: str) -> str:
    """The id without any signature in it."""
    return split(call_id)[0] if SEPARATOR in call_id else call_id
