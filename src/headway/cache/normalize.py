"""Text normalisation shared by the exact key and the semantic cache (pure functions).

Two levels:

- `normalize_text`: what the exact key uses. Case, whitespace, sentence punctuation, contractions
  and politeness filler ("please", "could you", "thanks", "hi") are folded; every word that can
  change the answer (negations, numbers, names, quantifiers) is kept. Code (anything inside
  backticks) is kept verbatim, since case and punctuation matter there.
- `semantic_text`: `normalize_text` plus spelling variants, for the embedder.

Guards (headway.cache.guards) work on `tokens()` of the semantic text.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import repeat

NORMALIZATION_VERSION = 1

_CODE = re.compile(r"(```.*?```|`[^`\n]+`)", re.S)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "`": "'"})

# Contractions are expanded so "can't" and "can not" compare equal (negations stay visible).
_CONTRACTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), r)
    for p, r in (
        (r"\bcan't\b", "can not"),
        (r"\bcannot\b", "can not"),
        (r"\bwon't\b", "will not"),
        (r"\bshan't\b", "shall not"),
        (r"\bain't\b", "is not"),
        (r"\blet's\b", "let us"),
        (r"\b(\w+)n't\b", r"\1 not"),
        (r"\b(i)'m\b", r"\1 am"),
        (r"\b(\w+)'re\b", r"\1 are"),
        (r"\b(\w+)'ve\b", r"\1 have"),
        (r"\b(\w+)'ll\b", r"\1 will"),
        (r"\b(how|what|where|when|who|why)'d\b", r"\1 did"),
        (r"\b(\w+)'d\b", r"\1 would"),
        (
            r"\b(it|that|there|here|what|where|when|who|how|he|she|this|which|why)'s\b",
            r"\1 is",
        ),
        (r"\b(\w+)'s\b", r"\1"),  # possessive: "ticket's category" ~ "ticket category"
    )
)

# Politeness and filler. Phrases first (longest first), then single words. Only words that never
# carry the request's meaning belong here.
_FILLER_PHRASES = (
    "sorry to bother you again",
    "sorry to bother you",
    "sorry to ask",
    "hope your week is going well",
    "hope you are well",
    "hope you are doing well",
    "i was wondering if you could",
    "i was wondering if",
    "i was wondering",
    "i would love to know",
    "i would like to know",
    "i really appreciate it",
    "thanks so much",
    "thanks a lot",
    "thanks a bunch",
    "thank you so much",
    "thank you very much",
    "thank you",
    "many thanks",
    "quick question",
    "would you be able to",
    "would you mind",
    "could you kindly",
    "could you please",
    "could you",
    "can you please",
    "can you help me understand",
    "can you help me",
    "can you",
    "would you",
    "will you",
    "please help",
    "help me understand",
    "for me",
    "hello there",
    "hi there",
    "hey there",
)
_FILLER_WORDS = frozenset(
    [
        "please",
        "pls",
        "plz",
        "kindly",
        "just",
        "maybe",
        "actually",
        "basically",
        "really",
        "simply",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thx",
        "cheers",
        "sorry",
        "greetings",
        "ok",
        "okay",
    ]
)
_FILLER_RE = re.compile(
    r"\b(?:"
    + "|".join(re.escape(p) for p in sorted(_FILLER_PHRASES, key=len, reverse=True))
    + r")\b"
)
#: the first word of each filler phrase. Every phrase has more than one word, so where one
#: matches, its first word ends a space-separated part of the text that is not the last: a text
#: without such a part is left alone by `_FILLER_RE` (most are), and need not be scanned by it.
_FILLER_FIRST = tuple(sorted({p.split(" ")[0] for p in _FILLER_PHRASES}))
assert all(" " in p for p in _FILLER_PHRASES), "a one-word filler belongs in _FILLER_WORDS"

# Informal spellings folded for the embedder and the guards only (never for the exact key).
SPELLING = {
    "thru": "through",
    "tho": "though",
    "u": "you",
    "ur": "your",
    "enrol": "enroll",
    "percent": "%",
    "pct": "%",
    "w": "with",
}

_PUNCT_EDGE = re.compile(r"[\"'()\[\]{}]*[.,;:!?]+[\"'()\[\]{}]*(?=\s|$)|(?:(?<=\s)|^)[\"'(\[{]+")

# `_PUNCT_EDGE` word by word. Its matches hold no whitespace and sit at a word's edges (the
# first branch ends where a word ends, the second starts where one starts), so applied to a
# text it equals these applied to each of its `split()` words, without scanning every
# character of the text with the whole pattern. A word that ends in none of `_ENDS` and starts
# with none of `_OPENERS` is left as it is.
_OPENERS = "\"'([{"
_ENDS = frozenset("\"'()[]{}.,;:!?")
#: the first branch, as a match at the end of one word
_TAIL = re.compile(r"[\"'()\[\]{}]*[.,;:!?]+[\"'()\[\]{}]*\Z")


def _edge_word(word: str) -> str:
    """What `_PUNCT_EDGE.sub(" ", word)` leaves of one non-empty word without whitespace ("" or
    one word): an opening run goes (the second branch at its start; when the first branch
    matches the whole word instead, no word is left either way), then the leftmost ending that
    the first branch matches."""
    start = len(word) - len(word.lstrip(_OPENERS))
    tail = _TAIL.search(word, start)
    return word[start : tail.start()] if tail is not None else word[start:]


def _split_code(text: str) -> list[tuple[bool, str]]:
    if "`" not in text:  # every code span starts with a backtick: most texts have none
        return [(False, text)] if text else []
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _CODE.finditer(text):
        if m.start() > pos:
            parts.append((False, text[pos : m.start()]))
        parts.append((True, m.group(0)))
        pos = m.end()
    if pos < len(text):
        parts.append((False, text[pos:]))
    return parts


#: every pattern but this one needs an apostrophe, and no replacement contains one
_CANNOT = _CONTRACTIONS[1]


def expand_contractions(text: str) -> str:
    # The passes run in order (a later one may rewrite an earlier one's output, e.g.
    # "wouldn't've"), so they are not merged; but without an apostrophe only "cannot" can
    # match, which skips 14 of the 15 scans for most texts with exactly the same result.
    if "'" not in text:
        pattern, repl = _CANNOT
        return pattern.sub(repl, text) if "cannot" in text else text
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    return text


def _filler_parts(text: str) -> list[str]:
    """`_FILLER_RE.sub(" ", text).split(" ")`, with the phrase pass only where one may match
    (`any(map(...))` tests every part but the last in C, without a frame per part)."""
    parts = text.split(" ")
    if any(map(str.endswith, parts, repeat(_FILLER_FIRST, len(parts) - 1))):
        parts = _FILLER_RE.sub(" ", text).split(" ")
    return parts


def strip_filler(text: str) -> str:
    """`text` must already be lowercased with contractions expanded."""
    return " ".join([w for w in _filler_parts(text) if w.strip(".,;:!?") not in _FILLER_WORDS])


def _normalize_prose(text: str) -> str:
    if not text.isascii():  # ASCII text is already in NFKC form
        text = unicodedata.normalize("NFKC", text)
        text = text.translate(_APOSTROPHES)
    elif "`" in text:  # the only ASCII character _APOSTROPHES maps: skip the slow translate
        text = text.translate(_APOSTROPHES)
    # `strip_filler`, `_PUNCT_EDGE.sub(" ", text)`, then `\s+` -> " " and strip, in one pass
    # over the words. A word of `strip_filler` is what lies between two spaces (it may hold
    # other whitespace); re's \s and str.split() agree on what whitespace is, so `split()`
    # gives the words `_PUNCT_EDGE` sees.
    text = text.casefold()
    if "'" in text or "cannot" in text:  # else `expand_contractions` returns it as it is
        text = expand_contractions(text)
    words: list[str] = []
    for part in _filler_parts(text):
        if part.strip(".,;:!?") in _FILLER_WORDS:
            continue
        for word in part.split():
            if word[-1] in _ENDS or word[0] in _OPENERS:
                word = _edge_word(word)
                if not word:
                    continue
            words.append(word)
    return " ".join(words)


@lru_cache(maxsize=8192)
def normalize_text(text: str) -> str:
    """The exact key's normal form of one message's text (versioned by NORMALIZATION_VERSION)."""
    if "`" not in text:  # no code span (most texts): the whole text is one part of prose
        return _normalize_prose(text)
    out: list[str] = []
    for is_code, part in _split_code(text):
        out.append(part.strip() if is_code else _normalize_prose(part))
    return " ".join(p for p in out if p)


@lru_cache(maxsize=8192)
def semantic_text(text: str) -> str:
    words = normalize_text(text).split(" ")
    return " ".join(SPELLING.get(w, w) for w in words)


_TOKEN = re.compile(r"[$€£]?\d[\d,]*(?:\.\d+)?%?|[a-z][a-z0-9]*(?:[+#]+|(?:-[a-z0-9]+)+)?|[%]")


def tokens(text: str) -> list[str]:
    """Word tokens of a normalised text: numbers keep their sign characters, `c++`/`c#` survive."""
    return _TOKEN.findall(text)
