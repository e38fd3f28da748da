"""Guards that veto a semantic cache hit: pure functions over two query texts.

An embedder scores "convert PNG to JPG" and "convert JPG to PNG" as near-identical; so it does
"do" and "do not", "5 USD" and "50 USD", "Austria" and "Australia". The threshold cannot fix this;
these guards do. Each compares one property of the two queries and names the reason when they
differ: `check(features(a), features(b))` returns None (allowed) or a `Veto` reason.

The rules, in order:

- `followup`: a query that depends on its conversation ("Tell me more.", "Does it work offline?")
  is never served from, or stored for, another conversation.
- `payload`: an instruction applied to inline text (after a colon, in quotes, or after the
  question) must carry the same text.
- `number`, `negation`, `scope`: numbers (digits and words), negations and quantifier or time
  words ("all", "one", "today", "this week") must match exactly.
- `antonym`: an opposite pair (increase/decrease, install/uninstall, with/without) differs.
- `direction`: the same words on swapped sides of "to", "than", "into", "onto" (PNG to JPG).
- `substitution`: one or two content words swapped for words that are neither spelling variants
  nor known synonyms (Sweden/Switzerland, pytest/Jest, return/exchange). Larger differences are
  paraphrases and are left to the similarity threshold, except `entity`: a named entity replaced
  by another.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from headway.cache.lexicon import (
    ANTONYMS,
    NEGATIONS,
    PHRASES,
    SCALES,
    SCOPE,
    STOPWORDS,
    SYNONYM_GROUPS,
    UNITS,
)
from headway.cache.normalize import SPELLING, expand_contractions, strip_filler

Veto = Literal[
    "followup",
    "payload",
    "number",
    "negation",
    "scope",
    "antonym",
    "direction",
    "substitution",
    "entity",
]

_SYNONYM = {w: group[0] for group in SYNONYM_GROUPS for w in group}
_ANTONYM = frozenset((a, b) for a, b in ANTONYMS) | frozenset((b, a) for a, b in ANTONYMS)
_NEG_PREFIXES = ("un", "dis", "de", "in", "im", "non", "anti")
_PIVOTS = frozenset({"to", "into", "onto", "than"})
# A phrase these introduce narrows a question ("... during pregnancy", "... in Canada").
_QUALIFIERS = frozenset(
    [
        "during",
        "for",
        "in",
        "on",
        "at",
        "with",
        "without",
        "after",
        "before",
        "while",
        "under",
        "over",
        "since",
        "until",
        "near",
        "within",
        "inside",
        "outside",
        "among",
        "per",
    ]
)
_PHRASE_RE = [(re.compile(rf"\b{re.escape(p)}\b"), r) for p, r in PHRASES]
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
_QUOTED = re.compile(r"""(?:^|(?<=[\s:(]))(["'])(.+?)\1(?=[\s.,;:!?)]|$)""")
_COLON = re.compile(r":(?=\s|$)")
_WORD = re.compile(
    r"\|"
    r"|[$€£]?\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?%?"
    r"|[a-z_][a-z0-9_]*[+#]*"
)
_BOUNDARY = re.compile(r"[,;:.!?]+(?=\s|$)|\s-\s|[()]")
_TIME_NOUNS = frozenset(
    [
        "week",
        "weekend",
        "month",
        "year",
        "morning",
        "evening",
        "afternoon",
        "season",
        "time",
        "quarter",
    ]
)
_FOLLOWUP_PHRASES = re.compile(
    r"\b(instead|again|tell me more|more about|the same|the above|as before|you said|you mentioned|"
    r"your (?:answer|previous|last|reply)|previous (?:answer|one|reply)|last answer|"
    r"the (?:first|second|third|fourth|last|other|next|previous) "
    r"(?:one|option|step|point|answer|part|example|suggestion)|that one|this one|go on|continue|"
    r"elaborate|more detail|before that|after that|and then)\b"
)
_FOLLOWUP_START = ("and ", "also ", "now ", "what about ", "how about ", "same ")


@dataclass(slots=True, frozen=True)
class Features:
    text: str
    followup: bool
    payload: str | None
    numbers: tuple[str, ...]
    negations: int
    without: bool
    has_with: bool
    scope: frozenset[str]
    content: tuple[str, ...]  # content words, stemmed and folded to a synonym
    spelled: tuple[str, ...]  # the same words stemmed only, for spelling-variant matching
    stems: frozenset[str]  # the same before synonym folding (antonyms are checked on these)
    entities: frozenset[str]
    seq: tuple[str, ...]  # content words, pivots and clause boundaries ("|"), in order
    qualifiers: tuple[frozenset[str], ...]  # content words of each prepositional phrase


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_QUOTES)


def _payload_norm(text: str) -> str:
    text = expand_contractions(text.casefold())
    text = re.sub(r"[^\w\s%$€£.]", " ", text)
    text = re.sub(r"\.(?!\d)", " ", text)
    return " ".join(text.split())


def _has_words(text: str) -> bool:
    return bool(strip_filler(expand_contractions(text.casefold())).strip(" .,;:!?-\"'"))


def split_payload(text: str) -> tuple[str, str | None]:
    """(instruction, inline text) of a query; the inline text is None when there is none."""
    m = _QUOTED.search(text)
    if m and _has_words(m.group(2)):
        return text[: m.start()] + text[m.end() :], _payload_norm(m.group(2))
    colon = _COLON.search(text)
    if colon and _has_words(text[: colon.start()]) and _has_words(text[colon.end() :]):
        return text[: colon.start()], _payload_norm(text[colon.end() :])
    q = text.find("?")
    if 0 < q < len(text) - 1:
        rest = text[q + 1 :]
        if _has_words(rest) and len(rest.split()) >= 2:
            return text[: q + 1], _payload_norm(rest)
    return text, None


def stem(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ly") and len(word) >= 6:
        return word[:-2]  # quickly -> quick
    for suffix in ("ment", "ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if len(base) >= 3 and base[-1] == base[-2] and base[-1] not in "ls":
                base = base[:-1]  # dropping -> drop
            return base
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _number(tok: str) -> str | None:
    t = tok.lstrip("$€£").rstrip("%").replace(",", "")
    for suffix in ("st", "nd", "rd", "th"):
        if t.endswith(suffix) and t[:-2].replace(".", "").isdigit():
            t = t[:-2]
    try:
        value = float(t)
    except ValueError:
        return None
    return f"{value:g}"


def _merge_number_words(words: list[str]) -> list[str]:
    """ "one hundred forty-four" -> "144"; a lone "one" -> "1"."""
    out: list[str] = []
    total = current = 0.0
    in_number = False
    for w in [*words, "|"]:
        parts = w.split("-") if "-" in w and all(p in UNITS for p in w.split("-")) else [w]
        if all(
            p in UNITS or (p in SCALES and in_number) or (p == "and" and in_number) for p in parts
        ):
            for p in parts:
                if p in UNITS:
                    current += UNITS[p]
                elif p in SCALES:
                    current = max(current, 1) * SCALES[p]
                    if SCALES[p] >= 1000:
                        total += current
                        current = 0
            in_number = True
            continue
        if in_number:
            out.append(f"{total + current:g}")
            total = current = 0
            in_number = False
        out.append(w)
    return out[:-1]


def _entity_words(text: str) -> frozenset[str]:
    found: set[str] = set()
    for sentence in re.split(r"[.!?:]\s+|\n", text):
        words = re.findall(r"[A-Za-z][A-Za-z0-9+#]*", sentence)
        for i, w in enumerate(words):
            if any(c.isdigit() for c in w) or "+" in w or "#" in w:
                found.add(w.lower())
            elif (w[0].isupper() and i > 0 and w.lower() not in STOPWORDS and w != "I") or (
                len(w) >= 2 and w.isupper() and w != "I"
            ):
                found.add(stem(w.lower()))
    return frozenset(found)


def _is_followup(instruction_words: list[str], flat: str, has_payload: bool) -> bool:
    if flat.startswith(_FOLLOWUP_START) or _FOLLOWUP_PHRASES.search(flat):
        return True
    words = [w for w in instruction_words if w != "|"]
    for i, w in enumerate(words):
        prev = words[i - 1] if i > 0 else ""
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w == "it":
            expletive = nxt in ("is", "was") or (
                prev in ("is", "was") and words[i + 2 : i + 3] == ["to"]
            )
            if not expletive and (i < 3 or len(words) <= 4):
                return True
        elif w == "them" and i < 3:
            return True
        elif w in ("this", "that", "these", "those") and not has_payload:
            if nxt in _TIME_NOUNS:
                continue
            if w == "that" and prev and prev not in STOPWORDS and nxt:
                continue  # a relative "that": "items that have been opened"
            return True
    return False


@lru_cache(maxsize=16384)
def features(text: str) -> Features:
    raw = _fold(text)
    instruction, payload = split_payload(raw)
    flat = strip_filler(expand_contractions(raw.casefold()))
    for pattern, repl in _PHRASE_RE:
        flat = pattern.sub(repl, flat)
    flat = " ".join(_BOUNDARY.sub(" | ", flat).split())
    words = _merge_number_words([SPELLING.get(w, w) for w in _WORD.findall(flat)])
    instr_flat = strip_filler(expand_contractions(instruction.casefold()))
    instr_words = _WORD.findall(_BOUNDARY.sub(" | ", instr_flat))
    followup = _is_followup(
        instr_words, instr_flat.strip(" ,.!?").lstrip("| "), payload is not None
    )

    numbers: list[str] = []
    negations = 0
    scope: set[str] = set()
    content: list[str] = []
    spelled: list[str] = []
    stems: set[str] = set()
    seq: list[str] = []
    qualifiers: list[set[str]] = []
    open_phrase: set[str] | None = None
    how_many = "many" in words
    for i, w in enumerate(words):
        if w in _QUALIFIERS or w == "|" or w in _PIVOTS:
            if open_phrase:
                qualifiers.append(open_phrase)
            # "on my account" only says whose; "during pregnancy" narrows the question
            own = words[i + 1 : i + 2] in (["my"], ["your"], ["our"])
            open_phrase = set() if w in _QUALIFIERS and not own else None
        if w == "|":
            if seq and seq[-1] != "|":
                seq.append("|")
            continue
        if w in _PIVOTS or (w == "in" and how_many):
            seq.append("<" + w + ">")
            continue
        if w[0].isdigit() or w[0] in "$€£":
            n = _number(w)
            if n is not None:
                numbers.append(n)
                seq.append(n)
                continue
        if w in NEGATIONS and w != "without":
            negations += 1
            continue
        s = stem(w)
        folded = _SYNONYM.get(w, _SYNONYM.get(s, s))
        if w in SCOPE or folded in SCOPE:
            scope.add(folded if folded in SCOPE else w)
            continue
        if w in STOPWORDS:
            continue
        content.append(folded)
        spelled.append(s)
        stems.add(s)
        seq.append(folded)
        if open_phrase is not None:
            open_phrase.add(folded)
    if open_phrase:
        qualifiers.append(open_phrase)
    return Features(
        text=text,
        followup=followup,
        payload=payload,
        numbers=tuple(sorted(numbers)),
        negations=negations,
        without="without" in words,
        has_with="with" in words,
        scope=frozenset(scope),
        content=tuple(content),
        spelled=tuple(spelled),
        stems=frozenset(stems),
        entities=_entity_words(raw),
        seq=tuple(seq),
        qualifiers=tuple(frozenset(q) for q in qualifiers),
    )


def _damerau_le1(a: str, b: str) -> bool:
    """True when `a` and `b` are at most one edit (insert, delete, substitute, swap) apart."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    if la > lb:
        return a[i + 1 :] == b[i:]
    return b[i + 1 :] == a[i:]


def _spelling_variant(a: str, b: str, entities: frozenset[str]) -> bool:
    if min(len(a), len(b)) < 4 or (a in entities and b in entities):
        return False
    return _damerau_le1(a, b) or ((a.startswith(b) or b.startswith(a)) and min(len(a), len(b)) >= 5)


def _unmatched(a: Features, b: Features, entities: frozenset[str]) -> tuple[list[str], list[str]]:
    """Content words of each side left over after pairing equal words, then spelling variants."""
    ra = list(zip(a.content, a.spelled, strict=True))
    rb: list[tuple[str, str]] = []
    for pair in zip(b.content, b.spelled, strict=True):
        same = next((p for p in ra if p[0] == pair[0]), None)
        if same is not None:
            ra.remove(same)
        else:
            rb.append(pair)
    for pair in list(rb):
        for other in ra:
            if _spelling_variant(other[1], pair[1], entities):
                ra.remove(other)
                rb.remove(pair)
                break
    return [p[0] for p in ra], [p[0] for p in rb]


def _is_antonym(x: str, y: str) -> bool:
    if (x, y) in _ANTONYM:
        return True
    if min(len(x), len(y)) < 3:
        return False
    return any(y == p + x or x == p + y for p in _NEG_PREFIXES)


def _windows(
    seq: tuple[str, ...], width: int = 3
) -> list[tuple[str, frozenset[str], frozenset[str]]]:
    out = []
    for i, w in enumerate(seq):
        if not w.startswith("<"):
            continue
        left: list[str] = []
        for v in reversed(seq[:i]):
            if v == "|" or len(left) >= width:
                break
            if not v.startswith("<"):
                left.append(v)
        right: list[str] = []
        for v in seq[i + 1 :]:
            if v == "|" or len(right) >= width:
                break
            if not v.startswith("<"):
                right.append(v)
        out.append((w, frozenset(left), frozenset(right)))
    return out


def _swapped(a: Features, b: Features) -> bool:
    for pa, la, ra in _windows(a.seq):
        for pb, lb, rb in _windows(b.seq):
            if pa != pb:
                continue
            xs = la & rb
            ys = ra & lb
            if xs and ys and (len(xs | ys) > 1):
                return True
    ca = [w for w in a.seq if w != "|" and not w.startswith("<")]
    cb = [w for w in b.seq if w != "|" and not w.startswith("<")]
    if ca == cb or sorted(ca) != sorted(cb) or not 1 < len(ca) <= 3:
        return False
    # A moved clause rotates the words; swapped arguments ("is a square a rectangle") do not.
    # Two words are both, and too few to tell: treat them as swapped.
    rotations = [ca[i:] + ca[:i] for i in range(1, len(ca))]
    return len(ca) == 2 or cb not in rotations


def same_words(a: Features, b: Features) -> bool:
    """The same content words up to order, spelling, synonyms and filler: strong evidence of
    the same request even when an embedder scores misspellings low. Call after `check`."""
    ua, ub = _unmatched(a, b, a.entities | b.entities)
    return not ua and not ub and bool(a.content)


def check(a: Features, b: Features) -> Veto | None:
    """Why `b` may not be served `a`'s cached answer (symmetric), or None when it may."""
    if a.followup or b.followup:
        return "followup"
    if a.payload != b.payload:
        one, other = (a, b) if a.payload is not None else (b, a)
        inline = one.payload or ""
        if other.payload is not None or inline not in _payload_norm(other.text):
            return "payload"
    if a.numbers != b.numbers:
        return "number"
    if a.negations != b.negations:
        return "negation"
    if a.scope != b.scope:
        return "scope"
    if (a.without and not b.without and b.has_with) or (b.without and not a.without and a.has_with):
        return "antonym"
    sa, sb = a.stems - b.stems, b.stems - a.stems
    if any(_is_antonym(x, y) for x in sa for y in sb):
        return "antonym"
    if _swapped(a, b):
        return "direction"
    entities = a.entities | b.entities
    ua, ub = _unmatched(a, b, entities)
    # One side adds a whole qualifying phrase the other lacks: a narrower question.
    for side, extra in ((a, ua), (b, ub)):
        if extra and not (ua and ub) and any(q <= set(extra) for q in side.qualifiers):
            return "scope"
    if ua and ub:
        if max(len(ua), len(ub)) <= 2:
            return "substitution"
        if any(w in a.entities for w in ua) and any(w in b.entities for w in ub):
            return "entity"
    return None
