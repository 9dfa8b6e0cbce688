"""One title normaliser, used both to build LLM targets and to match generated text.

Using the same function on both sides is what makes the recovery metric fair: a
target the model was trained to emit is matched in exactly the form it was taught.

    normalize_title("Usual Suspects, The (1995)")   -> "The Usual Suspects"
    normalize_title("Postino, Il (1994)")           -> "Il Postino"
    normalize_title("Appartement, L' (1996)")       -> "L'Appartement"
    normalize_title("Horseman on the Roof, The (Hussard sur le toit, Le) (1995)")
        -> "The Horseman on the Roof (Hussard sur le toit, Le)"
    normalize_title("Half-Life 2: Episode One™")    -> "Half-Life 2: Episode One"
    normalize_title("Mount &amp; Blade: Warband")  -> "Mount & Blade: Warband"
"""
from __future__ import annotations

import html
import re
import unicodedata

# MovieLens stores leading articles at the end ("Godfather, The"); these are the ones it uses.
_ARTICLES = ("The", "A", "An", "Il", "La", "Le", "Les", "L'", "Das", "Der", "Die", "Det", "Den",
             "El", "Lo", "Los", "Las", "Un", "Une", "I")
# "..., The" possibly followed by an alternative title in parentheses, e.g. "Crow, The (Le Corbeau)".
_TRAILING_ARTICLE = re.compile(r"^(?P<main>.+?), (?P<art>%s)(?P<alt> \(.*\))?$" % "|".join(re.escape(a) for a in _ARTICLES))
# A release year (optionally with a MovieLens suffix such as "(V)") at the very end.
_TRAILING_YEAR = re.compile(r"\s*\((?:\d{4}(?:/[IVX]+)?)\)(?:\s*\((?:V|TV)\))?\s*$")
_MARKS = str.maketrans({"™": "", "®": "", "©": "", "\u00a0": " ", "\u2019": "'", "\u2018": "'",
                        "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})
# Latin-1 bytes read as UTF-8 and back ("CafÃ©"): undo it when that gives valid text.
_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")


def fix_encoding(text: str) -> str:
    if _MOJIBAKE.search(text):
        try:
            return text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return text
    return text


def normalize_title(raw: str) -> str:
    """Readable title: no year, article in front, clean unicode and whitespace."""
    if not isinstance(raw, str):
        raise TypeError(f"title must be a string, got {type(raw).__name__}")
    # Steam names arrive HTML-escaped ("Command &amp; Conquer"); MovieLens titles never hold "&...;".
    t = unicodedata.normalize("NFC", html.unescape(fix_encoding(raw))).translate(_MARKS)
    t = " ".join(t.split())
    t = _TRAILING_YEAR.sub("", t)
    m = _TRAILING_ARTICLE.match(t)
    if m:
        art = m["art"]
        sep = "" if art.endswith("'") else " "
        t = f"{art}{sep}{m['main']}{m['alt'] or ''}"
    return t.strip()

