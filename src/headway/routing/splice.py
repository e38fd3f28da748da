"""Splicing one answer out of several streamed attempts (pure: chunks in, chunks out).

The caller sees one stream: one id, one model, one role, text that never repeats or skips, one
finish reason at the end and the usage of every attempt summed. Attempts after the first run in
one of three modes:

- FRESH: nothing reached the caller yet; the attempt's chunks pass through.
- PREFILL: the text delivered so far goes to the provider as a trailing assistant message and the
  provider continues it; its chunks pass through.
- RESTART: the provider rejects prefill, so the original request is sent again and the new text
  must begin with what was delivered; that prefix is skipped, and a restart that says something
  else raises `Diverged` (it cannot be spliced).

The finish reason and usage are held back until the attempt ends cleanly: a stream that breaks
after its finish chunk still produced the whole answer, and the final chunk carries the summed
usage. Attempts that broke without reporting usage are estimated: one output token per text chunk
received, and the prompt of the attempt that did report.
"""

from __future__ import annotations

import enum
from dataclasses import replace

from headway.types import ChatChunk, ChatRequest, FinishReason, Message, Usage


class Mode(enum.Enum):
    FRESH = "fresh"
    PREFILL = "prefill"
    RESTART = "restart"


class Diverged(Exception):
    """A restarted stream did not begin with the text the caller already has."""


def continuation(request: ChatRequest, delivered: str, delivered_tokens: int) -> ChatRequest:
    """The request that asks a provider to continue `delivered` (assistant prefill).

    Trailing whitespace is dropped from the prefill because providers reject it; `Splicer` drops
    it again from the start of the continuation if the model repeats it. A caller's own prefill
    is kept in front. `max_tokens` shrinks by what was already generated."""
    prefix = delivered.rstrip()
    messages = request.messages
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant" and not last.tool_calls:
        prefix = last.text() + prefix
        messages = messages[:-1]
    max_tokens = request.max_tokens
    if max_tokens is not None:
        max_tokens = max(1, max_tokens - delivered_tokens)
    return replace(
        request, messages=(*messages, Message("assistant", prefix)), max_tokens=max_tokens
    )


class Splicer:
    """The state of one caller-facing stream across attempts."""

    __slots__ = (
        "_attempt_out",
        "_attempt_usage",
        "_last_input",
        "_parts",
        "_role",
        "_skip",
        "_unreported",
        "_usage",
        "_usage_known",
        "_ws",
        "created",
        "delivered_chunks",
        "finish",
        "id",
        "mode",
        "model",
        "request",
        "started",
        "tool_calls",
    )

    def __init__(self, request: ChatRequest) -> None:
        self.request = request
        self._parts: list[str] = []
        self.delivered_chunks = 0
        self.tool_calls = False
        self.started = False
        self.id: str | None = None
        self.model: str | None = None
        self.created = 0
        self.finish: FinishReason | None = None
        self.mode = Mode.FRESH
        self._role: str | None = None
        self._skip = ""
        self._ws = ""
        self._usage = Usage()
        self._usage_known = False
        self._last_input = 0
        self._unreported: list[int] = []
        self._attempt_usage: Usage | None = None
        self._attempt_out = 0

    @property
    def text(self) -> str:
        """Everything the caller has received so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def resumable(self) -> bool:
        """Text (and only text) reached the caller: a later attempt can splice onto it."""
        return not self.tool_calls

    def mode_for(self, prefill: bool) -> Mode:
        if not self.started:
            return Mode.FRESH
        if prefill and self.text.strip():
            return Mode.PREFILL
        return Mode.RESTART

    def request_for(self, mode: Mode) -> ChatRequest:
        if mode is Mode.PREFILL:
            return continuation(self.request, self.text, self.delivered_chunks)
        return self.request

    def begin(self, mode: Mode) -> None:
        """Start an attempt in `mode`."""
        self.mode = mode
        self.finish = None
        self._attempt_usage = None
        self._attempt_out = 0
        self._skip = self._ws = ""
        if mode is Mode.RESTART:
            self._skip = self.text
        elif mode is Mode.PREFILL:
            text = self.text
            self._ws = text[len(text.rstrip()) :]

    def accept(self, chunk: ChatChunk) -> ChatChunk | None:
        """The chunk to hand to the caller for one received chunk, or None (nothing new)."""
        if self.id is None:
            self.id, self.model, self.created = chunk.id, chunk.model, chunk.created
        text = chunk.text
        if (
            text
            and self.started
            and not self._skip
            and not self._ws
            and chunk.finish_reason is None
            and chunk.usage is None
            and not chunk.tool_calls
            and not chunk.refusal
        ):
            # Nearly every chunk: more text once output started, nothing to skip or trim. What
            # the general path below does with it, without the checks that cannot apply.
            self._attempt_out += 1
            self._parts.append(text)
            self.delivered_chunks += 1
            chunk.id, chunk.model, chunk.created = self.id, self.model or "", self.created
            chunk.role = None
            return chunk
        if chunk.usage is not None:
            self._attempt_usage = chunk.usage
        if text:
            self._attempt_out += 1
            if self._skip:
                n = min(len(self._skip), len(text))
                if text[:n] != self._skip[:n]:
                    raise Diverged("the restarted answer differs from the text already sent")
                self._skip = self._skip[n:]
                text = text[n:]
            elif self._ws:
                n = 0
                while n < len(self._ws) and n < len(text) and text[n] == self._ws[n]:
                    n += 1
                text = text[n:]
                self._ws = ""
        if self._skip and (chunk.finish_reason is not None or chunk.tool_calls or chunk.refusal):
            raise Diverged("the restarted answer ended before reaching the text already sent")
        if chunk.finish_reason is not None:
            self.finish = chunk.finish_reason
        if not text and not chunk.tool_calls and not chunk.refusal:
            if chunk.role and not self.started:
                self._role = chunk.role
            return None
        role = None
        if not self.started:
            self.started = True
            role = chunk.role or self._role
        if chunk.tool_calls:
            self.tool_calls = True
        if text:
            self._parts.append(text)
            self.delivered_chunks += 1
        chunk.id, chunk.model, chunk.created = self.id, self.model or "", self.created
        chunk.text = text
        chunk.role = role
        chunk.finish_reason = None
        chunk.usage = None
        return chunk

    def end_attempt(self) -> None:
        """Fold the attempt's usage (reported or estimated) into the total."""
        usage = self._attempt_usage
        if usage is not None:
            self._usage.add(usage)
            self._usage_known = True
            self._last_input = usage.input_tokens
        elif self._attempt_out:
            self._unreported.append(self._attempt_out)
        self._attempt_usage = None
        self._attempt_out = 0

    @property
    def usage(self) -> Usage | None:
        """Usage over every attempt so far; None when no attempt reported or produced any."""
        if not self._usage_known and not self._unreported:
            return None
        total = Usage()
        total.add(self._usage)
        for out in self._unreported:
            total.output_tokens += out
            total.input_tokens += self._last_input
            total.estimated = True
        return total

    def final_chunk(self) -> ChatChunk:
        """The last chunk: the finish reason and the summed usage."""
        return ChatChunk(
            id=self.id or "",
            model=self.model or "",
            finish_reason=self.finish or FinishReason.STOP,
            usage=self.usage,
            created=self.created,
            role=None if self.started else self._role,
        )
