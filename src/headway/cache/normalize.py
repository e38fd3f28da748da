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


def strip_filler(text: str) -> str:
    """`text` must already be lowercased with contractions expanded."""
    text = _FILLER_RE.sub(" ", text)
    words = [w for w in text.split(" ") if w.strip(".,;:!?") not in _FILLER_WORDS]
    return " ".join(words)


def _normalize_prose(text: str) -> str:
    if not text.isascii():  # ASCII text is already in NFKC form
        text = unicodedata.normalize("NFKC", text)
        text = text.translate(_APOSTROPHES)
    elif "`" in text:  # the only ASCII character _APOSTROPHES maps: skip the slow translate
        text = text.translate(_APOSTROPHES)
    text = expand_contractions(text.casefold())
    text = strip_filler(text)
    text = _PUNCT_EDGE.sub(" ", text)
    # `\s+` -> " " then strip: re's \s and str.split() agree on what is whitespace, so this is
    # the same text, several times faster
    return " ".join(text.split())


@lru_cache(maxsize=8192)
def normalize_text(text: str) -> str:
    """The exact key's normal form of one message's text (versioned by NORMALIZATION_VERSION)."""
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
