"""Static answers, matched on the normalised prompt (the last user message).

The file is YAML or JSON, either a mapping `prompt: answer` or a list of
`{prompts: [...], answer: ...}` / `{prompt: ..., answer: ...}` items, with an optional `default`.
Normalising (Unicode NFKC, case folding, collapsed whitespace, surrounding punctuation dropped)
makes "What are your opening hours?" and "what are your  opening hours" the same prompt.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from headway.errors import ConfigError
from headway.types import ChatRequest

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n.,;:!?¿¡\"'`()[]{}"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", text).strip(_EDGE_PUNCT)


def prompt_of(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text()
    return ""


class StaticAnswers:
    __slots__ = ("answers", "default")

    def __init__(self, answers: Mapping[str, str], default: str | None = None) -> None:
        self.answers = {normalise(k): v for k, v in answers.items()}
        self.default = default

    def __bool__(self) -> bool:
        return bool(self.answers) or self.default is not None

    def match(self, request: ChatRequest) -> str | None:
        answer = self.answers.get(normalise(prompt_of(request)))
        return answer if answer is not None else self.default


def _items(raw: Any, path: str) -> tuple[dict[str, str], str | None]:
    answers: dict[str, str] = {}
    default: str | None = None
    if isinstance(raw, dict):
        default = raw.pop("default", None)
        items = raw.get("answers", raw)
        if isinstance(items, dict):
            for k, v in items.items():
                if not isinstance(v, str):
                    raise ConfigError(path, f"the answer to {k!r} must be text")
                answers[str(k)] = v
            return answers, default
        raw = items
    if not isinstance(raw, list):
        raise ConfigError(path, "expected a mapping of prompt -> answer or a list of items")
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("answer"), str):
            raise ConfigError(f"{path}[{i}]", "each item needs an `answer` and `prompt(s)`")
        prompts = item.get("prompts") or [item.get("prompt")]
        for p in prompts:
            if not isinstance(p, str):
                raise ConfigError(f"{path}[{i}]", "prompts must be text")
            answers[p] = item["answer"]
    return answers, default


def load_static(
    file: str | None,
    inline: Mapping[str, str],
    default: str | None,
    *,
    path: str,
    base: Path | None = None,
) -> StaticAnswers:
    """Answers from `file` (relative to `base`) and `inline`; `path` names the config field."""
    answers: dict[str, str] = {}
    file_default: str | None = None
    if file:
        p = Path(file)
        if not p.is_absolute() and base is not None:
            p = base / p
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}.static_file", f"cannot read {p}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}.static_file", f"{p} is not valid YAML/JSON: {exc}") from exc
        answers, file_default = _items(raw if raw is not None else {}, f"{path}.static_file")
    answers.update(inline)
    return StaticAnswers(answers, default if default is not None else file_default)
