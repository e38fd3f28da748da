"""BERT's uncased WordPiece tokenizer in plain Python, so the default embedder needs no extra wheel.

It reproduces `BertTokenizer(do_lower_case=True, tokenize_chinese_chars=True)`: clean control
characters, split CJK characters, lowercase, strip accents, split punctuation, then greedy
longest-match WordPiece over `vocab.txt`. Words repeat across queries, so their pieces are memoised.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path


def _is_whitespace(ch: str) -> bool:
    if ch in " \t\n\r":
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # BERT treats every non-alphanumeric ASCII character as punctuation, e.g. "$" and "^".
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokens(text: str) -> list[str]:
    """Whitespace and punctuation split after cleaning, lowercasing and accent stripping."""
    cleaned: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            cleaned.append(" ")
        elif _is_cjk(cp):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    out: list[str] = []
    for word in "".join(cleaned).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        current: list[str] = []
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    out.append("".join(current))
                    current = []
                out.append(ch)
            else:
                current.append(ch)
        if current:
            out.append("".join(current))
    return out


class WordPiece:
    def __init__(self, vocab: dict[str, int], *, max_chars_per_word: int = 100) -> None:
        self.vocab = vocab
        self.unk = vocab["[UNK]"]
        self.cls = vocab["[CLS]"]
        self.sep = vocab["[SEP]"]
        self.pad = vocab.get("[PAD]", 0)
        self._max_chars = max_chars_per_word
        self._pieces = lru_cache(maxsize=65536)(self._word_pieces)

    @classmethod
    def from_file(cls, path: Path) -> WordPiece:
        with path.open(encoding="utf-8") as fh:
            vocab = {line.rstrip("\n"): i for i, line in enumerate(fh)}
        return cls(vocab)

    def _word_pieces(self, word: str) -> tuple[int, ...]:
        if len(word) > self._max_chars:
            return (self.unk,)
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = -1
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                idx = self.vocab.get(sub)
                if idx is not None:
                    found = idx
                    break
                end -= 1
            if found < 0:
                return (self.unk,)
            pieces.append(found)
            start = end
        return tuple(pieces)

    def encode(self, text: str, *, max_length: int = 256) -> list[int]:
        """Token ids with [CLS] and [SEP], truncated to `max_length` like sentence-transformers."""
        ids = [self.cls]
        for word in basic_tokens(text):
            ids.extend(self._pieces(word))
        del ids[max_length - 1 :]
        ids.append(self.sep)
        return ids
