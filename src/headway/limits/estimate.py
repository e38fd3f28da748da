"""Token estimation before the call: offline, conservative, cheap.

Input is counted with tiktoken (headway.tokens) in the deployment's OpenAI encoding, using
OpenAI's chat framing (3 tokens per message, 1 per name, 3 to prime the reply), plus tool
definitions and tool calls as their JSON, plus a fixed charge per image (its size is unknown
without decoding it, so the largest layout is assumed). Anthropic and Gemini have no exact offline
tokenizer: their estimate is the OpenAI count times a per-provider factor. Output is what the
call may produce: `max_tokens` (or the deployment's / configured default) times `n`.
Settlement corrects all of this to the provider's reported usage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from headway import tokens
from headway.config.runtime import Deployment
from headway.limits.config import EstimateSettings
from headway.types import ChatRequest, ImagePart, ToolSpec

MESSAGE_OVERHEAD = 3
NAME_OVERHEAD = 1
REPLY_PRIMING = 3
#: the wrapper a tool definition is rendered in, beyond its own JSON
TOOL_OVERHEAD = 8
#: the wrapper of one tool call an assistant message carries
TOOL_CALL_OVERHEAD = 4


@dataclass(slots=True)
class Demand:
    """What one call may use: input tokens (estimated) and output tokens (its cap). Treat it
    as frozen (not declared so: built per call, see `Reservation`)."""

    input_tokens: int
    output_tokens: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def _tool_text(tool: ToolSpec) -> str:
    body = {"name": tool.name, "description": tool.description or "", "parameters": tool.parameters}
    return orjson.dumps(body).decode()


class Estimator:
    def __init__(self, settings: EstimateSettings) -> None:
        self._settings = settings
        #: encoding name -> its `encode_ordinary` (= tokens.count), looked up once
        self._encoders: dict[str, Callable[[str], list[int]]] = {}

    def count_input(self, request: ChatRequest, encoding: str) -> int:
        """Input tokens as an OpenAI model would count them (no provider factor)."""
        s = self._settings
        texts: list[str] = []
        fixed = REPLY_PRIMING
        for message in request.messages:
            fixed += MESSAGE_OVERHEAD
            if message.name:
                fixed += NAME_OVERHEAD
                texts.append(message.name)
            content = message.content
            if isinstance(content, str):
                texts.append(content)
            elif content is not None:
                for part in content:
                    if isinstance(part, ImagePart):
                        fixed += s.image_tokens_low if part.detail == "low" else s.image_tokens
                    else:
                        texts.append(part.text)
            for call in message.tool_calls:
                fixed += TOOL_CALL_OVERHEAD
                texts.append(call.name)
                texts.append(call.arguments)
        for tool in request.tools:
            fixed += TOOL_OVERHEAD
            texts.append(_tool_text(tool))
        if request.response_format:
            texts.append(orjson.dumps(request.response_format).decode())
        # each piece on its own, as the provider frames them: never fewer tokens than joined text
        encode = self._encoders.get(encoding)
        if encode is None:
            encode = self._encoders[encoding] = tokens.get_encoding(encoding).encode_ordinary
        total = fixed
        for text in texts:
            if text:
                total += len(encode(text))
        return total

    def factor(self, deployment: Deployment) -> float:
        factors = self._settings.factors
        return factors.get(deployment.name) or factors.get(deployment.provider.kind) or 1.0

    def output_cap(self, request: ChatRequest, deployments: tuple[Deployment, ...]) -> int:
        """Output tokens one choice may produce: the request's cap, else the largest default."""
        if request.max_tokens is not None:
            return request.max_tokens
        return self.default_cap(deployments)

    def default_cap(self, deployments: tuple[Deployment, ...]) -> int:
        """`output_cap` of a request that sets no `max_tokens`."""
        defaults = [d.model.default_max_tokens for d in deployments if d.model.default_max_tokens]
        return max(defaults) if defaults else self._settings.default_max_tokens

    def encoding_of(self, deployment: Deployment) -> str:
        """The tiktoken encoding `deployment`'s input is counted in."""
        encoding = tokens.encoding_for_model(deployment.model.model)
        if (
            self._settings.encoding != tokens.DEFAULT_ENCODING
            and encoding == tokens.DEFAULT_ENCODING
        ):
            encoding = self._settings.encoding
        return encoding

    def demand(
        self,
        request: ChatRequest,
        deployment: Deployment,
        output_cap: int,
        counted: dict[str, int] | None = None,
    ) -> Demand:
        """The call's demand on `deployment`. `counted` memoises raw counts per encoding, so a
        chain of several deployments counts the prompt once."""
        return self.demand_in(
            request, self.encoding_of(deployment), self.factor(deployment), output_cap, counted
        )

    def demand_in(
        self,
        request: ChatRequest,
        encoding: str,
        factor: float,
        output_cap: int,
        counted: dict[str, int] | None = None,
    ) -> Demand:
        """`demand` with the deployment's encoding and factor already resolved (the planner
        resolves them once per config, not per call)."""
        memo = counted if counted is not None else {}
        raw = memo.get(encoding)
        if raw is None:
            raw = memo[encoding] = self.count_input(request, encoding)
        n = request.n
        return Demand(math.ceil(raw * factor), output_cap * (n if n > 1 else 1))  # max(n, 1)

    def streamed_output(self, text: str, encoding: str = tokens.DEFAULT_ENCODING) -> int:
        """Tokens of output already sent when a stream ends without reported usage."""
        return tokens.count(text, encoding) if text else 0
