"""Token estimation: messages, tools, images, provider factors, output caps."""

from __future__ import annotations

from headway.config.load import load
from headway.limits.config import EstimateSettings
from headway.limits.estimate import (
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    TOOL_OVERHEAD,
    Estimator,
)
from headway.tokens import count
from headway.types import ChatRequest, ImagePart, Message, TextPart, ToolCall, ToolSpec

RUNTIME = load(
    text="""
providers:
  oa: {kind: openai}
  an: {kind: anthropic}
  ge: {kind: gemini}
models:
  gpt: {provider: oa, model: gpt-4o}
  old: {provider: oa, model: gpt-4-turbo}
  claude: {provider: an, model: claude-sonnet-4-6, default_max_tokens: 1024}
  gem: {provider: ge, model: gemini-2.5-flash}
""",
    env={},
)
EST = Estimator(EstimateSettings())


def req(*messages: Message, **kw: object) -> ChatRequest:
    return ChatRequest(model="gpt", messages=messages, **kw)  # type: ignore[arg-type]


def test_hello_world_is_two_tokens_in_both_encodings() -> None:
    assert count("hello world", "o200k_base") == 2
    assert count("hello world", "cl100k_base") == 2
    assert count("tiktoken is great!", "o200k_base") == 6


def test_one_message_uses_openai_chat_framing() -> None:
    request = req(Message("user", "hello world"))
    assert EST.count_input(request, "o200k_base") == 2 + MESSAGE_OVERHEAD + REPLY_PRIMING


def test_names_and_more_messages_add_their_framing() -> None:
    one = EST.count_input(req(Message("user", "hello world")), "o200k_base")
    two = EST.count_input(
        req(Message("system", "hello world"), Message("user", "hello world", name="bob")),
        "o200k_base",
    )
    assert two >= one + MESSAGE_OVERHEAD + 2 + 1  # the second message, its text, and its name


def test_images_are_charged_conservatively() -> None:
    image = ImagePart(url="https://example.com/cat.png")
    low = ImagePart(url="https://example.com/cat.png", detail="low")
    text = EST.count_input(req(Message("user", (TextPart("hello world"),))), "o200k_base")
    big = EST.count_input(req(Message("user", (TextPart("hello world"), image))), "o200k_base")
    small = EST.count_input(req(Message("user", (TextPart("hello world"), low))), "o200k_base")
    assert big - text == 1600
    assert small - text == 85


def test_tools_and_tool_calls_are_counted_from_their_json() -> None:
    base = req(Message("user", "hello world"))
    tool = ToolSpec(
        "get_weather",
        "Weather for a city",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    with_tool = req(Message("user", "hello world"), tools=(tool,))
    extra = EST.count_input(with_tool, "o200k_base") - EST.count_input(base, "o200k_base")
    assert extra >= TOOL_OVERHEAD + 15  # the schema's JSON is well over 15 tokens
    call = Message(
        "assistant", None, tool_calls=(ToolCall("c1", "get_weather", '{"city": "Paris"}'),)
    )
    assert (
        EST.count_input(req(Message("user", "hello world"), call), "o200k_base")
        > EST.count_input(base, "o200k_base") + MESSAGE_OVERHEAD
    )


def test_provider_factors_and_encodings() -> None:
    request = req(Message("user", "hello world " * 100))
    counted: dict[str, int] = {}
    deps = RUNTIME.deployments
    gpt = EST.demand(request, deps["gpt"], 100, counted)
    claude = EST.demand(request, deps["claude"], 100, counted)
    gem = EST.demand(request, deps["gem"], 100, counted)
    assert claude.input_tokens == -(-gpt.input_tokens * 12 // 10)  # x1.2, rounded up
    assert gem.input_tokens >= gpt.input_tokens * 1.1
    assert set(counted) == {"o200k_base"}  # counted once for the whole chain
    EST.demand(request, deps["old"], 100, counted)
    assert set(counted) == {"o200k_base", "cl100k_base"}


def test_output_is_the_cap_times_n() -> None:
    deps = RUNTIME.deployments
    assert EST.output_cap(req(Message("user", "x"), max_tokens=50), (deps["gpt"],)) == 50
    assert EST.output_cap(req(Message("user", "x")), (deps["gpt"],)) == 4096
    assert EST.output_cap(req(Message("user", "x")), (deps["claude"],)) == 1024
    d = EST.demand(req(Message("user", "x"), max_tokens=50, n=3), deps["gpt"], 50)
    assert d.output_tokens == 150
