"""What one vendor's fake adds to the shared server: its routes, auth, headers and error bodies.

A flavour is independent of headway's own wire modules on purpose: the fakes are the yardstick
headway's adapters are tested against, so they must not share (and hide) the adapters' mistakes.
A flavour parses its vendor's request bodies into neutral `ChatRequest`s for the engine and
serialises what the engine produces (`ChatResponse`, `ChatChunk`s, a `StreamFault`, errors) the way
that vendor does. Add one by writing a class with these members in
`headway/providers/fake/<name>.py` and listing it in `FLAVOURS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from headway.errors import HeadwayError

if TYPE_CHECKING:
    from headway.providers.fake.server import FakeServer


class Flavour(Protocol):
    name: str
    #: the path clients put in their base URL (`/v1` for OpenAI; `` for Anthropic's SDK, whose
    #: base URL has no version; `/v1beta` for Gemini)
    base_path: str
    #: model ids listed by the models endpoint when the server is given none
    default_models: tuple[str, ...]

    def routes(self, server: FakeServer) -> Iterable[web.RouteDef]:
        """Handlers for the vendor's endpoints. Name each route: the name is the stats key."""
        ...

    def authenticate(self, request: web.Request, api_key: str) -> HeadwayError | None:
        """None when the request carries `api_key` the vendor's way, else the error to answer."""
        ...

    def headers(self, server: FakeServer, request: web.Request) -> dict[str, str]:
        """Headers on every response: the request id, rate-limit headers, vendor extras."""
        ...

    def error_response(
        self, server: FakeServer, err: HeadwayError, status: int, headers: Mapping[str, str]
    ) -> web.Response:
        """The vendor's error body for `err` answered with `status`."""
        ...


#: flavour name -> "module:class"; imported only when a server of that flavour starts
FLAVOURS: dict[str, str] = {
    "openai": "headway.providers.fake.openai:OpenAIFlavour",
    "anthropic": "headway.providers.fake.anthropic:AnthropicFlavour",
    "gemini": "headway.providers.fake.gemini:GeminiFlavour",
    "azure": "headway.providers.fake.azure:AzureFlavour",
}


def load_flavour(name: str) -> Flavour:
    target = FLAVOURS.get(name)
    if target is None:
        raise ValueError(f"unknown fake flavour {name!r}; known: {', '.join(FLAVOURS)}")
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ValueError(f"the {name} fake is not part of this build") from exc
        raise
    flavour: Flavour = getattr(module, attr)()
    return flavour
