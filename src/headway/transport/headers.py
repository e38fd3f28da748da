"""Response headers as a case-insensitive mapping that costs what a plain dict costs.

Keys are stored lower-cased once, as the parser hands them over, so lookups only lower the name
asked for; iteration, `items()` and `len()` are the dict's own C paths. Repeated fields are
joined with ", " (RFC 9110 5.3), which is what every consumer here wants from a single value.
"""

from __future__ import annotations

from typing import TypeVar, overload

_T = TypeVar("_T")


class Headers(dict[str, str]):
    """Lower-cased names; `h["Content-Type"]`, `h.get("X-Thing")` and `in` ignore case."""

    __slots__ = ()

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name.lower() if isinstance(name, str) else name)

    @overload
    def get(self, name: str, default: None = None, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T: ...
    def get(self, name: str, default: object = None, /) -> object:
        return dict.get(self, name.lower(), default)

    def add(self, name: str, value: str) -> None:
        """Add a field whose name is already lower-case (as the parser delivers it)."""
        old = dict.get(self, name)
        dict.__setitem__(self, name, value if old is None else f"{old}, {value}")
