"""`HttpCall`'s written-out constructor keeps the generated one's fields and defaults."""

from __future__ import annotations

import dataclasses

from headway.providers.base import HttpCall


def test_defaults_are_fresh_empty_dicts() -> None:
    a, b = HttpCall("POST", "/x"), HttpCall("POST", "/x")
    assert a == HttpCall("POST", "/x", None, {}, {})
    assert a.headers is not b.headers and a.query is not b.query
    a.headers["k"] = "v"
    assert b.headers == {}


def test_given_values_are_kept_and_replace_works() -> None:
    headers, query = {"h": "1"}, {"q": "2"}
    call = HttpCall("GET", "/y", {"a": 1}, headers=headers, query=query)
    assert call.headers is headers and call.query is query
    assert dataclasses.replace(call, path="/z").path == "/z"
    assert [f.name for f in dataclasses.fields(HttpCall)] == [
        "method",
        "path",
        "body",
        "headers",
        "query",
    ]
