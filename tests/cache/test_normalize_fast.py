"""The normal form's fast paths give the text the plain regex passes gave."""

from __future__ import annotations

import re
import sys

from headway.cache.normalize import normalize_text


def test_str_split_and_re_agree_on_every_whitespace_character() -> None:
    # `" ".join(text.split())` stands for `re.sub(r"\s+", " ", text).strip()`
    space = re.compile(r"\s")
    odd = [c for c in range(sys.maxunicode + 1) if bool(space.match(chr(c))) != chr(c).isspace()]
    assert odd == []


def test_whitespace_of_every_kind_folds_to_single_spaces() -> None:
    assert normalize_text(" a\t\n b\u00a0\u3000c\u2028 ") == "a b c"


def test_backticks_and_curly_quotes_outside_code_are_still_folded() -> None:
    assert normalize_text("it\u2019s fine") == normalize_text("it's fine") == "it is fine"
    assert normalize_text("a lone ` tick") == normalize_text("a lone ' tick")
    assert normalize_text("keep `X = 1` as is") == "keep `X = 1` as is"
