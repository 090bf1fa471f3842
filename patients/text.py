"""Text as people type it, made comparable."""

from __future__ import annotations

import re
import unicodedata


def search_key(*parts: str) -> str:
    """Lower-case, accent-free, punctuation-free words: "José O'Brien-Smith" → "jose obrien smith"."""
    text = unicodedata.normalize("NFKD", " ".join(parts))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = re.sub(r"['’`]", "", text)
    return " ".join(word for word in re.split(r"[^0-9a-z]+", text) if word)
