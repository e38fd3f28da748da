"""headway: a production gateway for LLM APIs.

Importing this package does no I/O; the heavy parts load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Call",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Gateway",
    "HeadwayError",
    "Message",
    "Principal",
    "Usage",
    "__version__",
    "load_config",
]

if TYPE_CHECKING:
    from headway.config.load import load as load_config
    from headway.context import Call, Principal
    from headway.errors import HeadwayError
    from headway.gateway import Gateway
    from headway.types import ChatChunk, ChatRequest, ChatResponse, Message, Usage

_LAZY = {
    "Gateway": ("headway.gateway", "Gateway"),
    "load_config": ("headway.config.load", "load"),
    "Call": ("headway.context", "Call"),
    "Principal": ("headway.context", "Principal"),
    "HeadwayError": ("headway.errors", "HeadwayError"),
    "ChatChunk": ("headway.types", "ChatChunk"),
    "ChatRequest": ("headway.types", "ChatRequest"),
    "ChatResponse": ("headway.types", "ChatResponse"),
    "Message": ("headway.types", "Message"),
    "Usage": ("headway.types", "Usage"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'headway' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value
