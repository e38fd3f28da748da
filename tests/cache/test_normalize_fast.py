"""The normal form's fast paths give the text the plain regex passes gave."""

from __future__ import annotations

import random
import re
import sys
import unicodedata

from headway.cache import normalize
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


def _reference_prose(text: str) -> str:
    """`_normalize_prose` as plain regex passes over the whole text (before the word pass)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = normalize.expand_contractions(text.translate(normalize._APOSTROPHES).casefold())
    return " ".join(normalize._PUNCT_EDGE.sub(" ", _reference_filler(text)).split())


def _reference_filler(text: str) -> str:
    """`strip_filler` with its phrase pass over every text."""
    words = normalize._FILLER_RE.sub(" ", text).split(" ")
    return " ".join(w for w in words if w.strip(".,;:!?") not in normalize._FILLER_WORDS)


def test_the_word_pass_equals_the_regex_passes_over_the_whole_text() -> None:
    pieces = [*"abcxyz \"'()[]{}.,;:!?\n\t", "\u00a0", "\u2019", "could you", "please", "hi "]
    pieces += ["i", "thanks", "can't", "it's", "3.5", "!?", '?!"', '("', "\u2028", "sorry to ask"]
    rng = random.Random(11)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 24)))
        assert normalize._normalize_prose(text) == _reference_prose(text), repr(text)
        folded = text.casefold()
        assert normalize.strip_filler(folded) == _reference_filler(folded), repr(text)
