"""Natural names and the stable ids derived from them (committees, owner teams); pure.

A person types "Policing Performance Committee" where the contract keeps an id such as
`policing-performance-committee`. `derive_id` is the one rule between the two:

1. Text that is already an id (`Slug`: a lower-case ASCII letter or digit, then up to 79 more
   of those or `-`) is its own id, unchanged. So every id ever recorded keeps addressing what it
   did, and deriving is idempotent: `derive_id(derive_id(x)) == derive_id(x)`.
2. Anything else is folded: Unicode compatibility forms are unfolded (NFKD: "ﬁ" is "fi", a
   full-width "Ａ" is "A"), case is folded ("ẞ" is "ss"), the letters NFKD keeps whole are
   spelled in ASCII (æ ae, œ oe, ø o, ł l, đ/ð d, þ th, ı i, ħ h, ŧ t, ŋ n), and diacritics
   are dropped (é e, à a, ŵ w).
3. "&" reads as the word "and"; apostrophes (' ’ ‘ ʼ ` ´ ′) join the letters either side
   ("Chief Constable's" is `chief-constables`).
4. Every run of anything else (spaces, punctuation, symbols) becomes one "-", and "-" is
   trimmed from both ends.
5. There is no id (`NoId`, a ValueError saying why; a command is refused naming its field)
   when a letter or digit is left with no ASCII spelling (Greek, Cyrillic, CJK, …: dropping
   it would make "Ελλάδα Team" and "Κύπρος Team" the same `team`), when no letter or digit is
   left at all, or when the id would be longer than 80 characters.

Names are never looked up to make an id: the id follows from the text alone, so the decider
keys a command by it without reading anything (committee streams are `committee:<id>`).
"""

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from events.types import ShortText

ID_MAX = 80
ID_REGEX = r"^[a-z0-9][a-z0-9-]{0,79}$"
_ID = re.compile(ID_REGEX)
# Letters NFKD leaves whole (they are not a base letter plus a mark), spelled in ASCII.
_SPELLED = str.maketrans(
    {
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "ħ": "h",
        "ŧ": "t",
        "ŋ": "n",
    }
)
_APOSTROPHES = re.compile("['’‘ʼ`´′]")
_NOT_ID = re.compile(r"[^a-z0-9]+")


class NoId(ValueError):
    """Text from which no id can be derived; says why."""


def is_id(text: str) -> bool:
    """Whether the text is already an id (the `Slug` pattern)."""
    return _ID.fullmatch(text) is not None


def derive_id(text: str) -> str:
    """The stable id of a name (see the module docstring); NoId when there is none."""
    if is_id(text):
        return text
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    folded = folded.translate(_SPELLED)
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = _APOSTROPHES.sub("", folded.replace("&", " and "))
    foreign = next((c for c in folded if not c.isascii() and c.isalnum()), None)
    if foreign is not None:
        raise NoId(f"holds {foreign!r}, a letter or digit with no ASCII spelling; give an id")
    derived = _NOT_ID.sub("-", folded).strip("-")
    if not derived:
        raise NoId("holds no letter or digit an id can be made of (A-Z, 0-9 after folding)")
    if len(derived) > ID_MAX:
        raise NoId(f"makes an id of {len(derived)} characters; at most {ID_MAX}")
    return derived


def id_key(text: str) -> str:
    """What two names are compared by: their id, or the text itself when it derives none.

    For values already in the log, written before names were derived (an owner team such as
    "Team A" or one in another script): every one compares, none is refused.
    """
    try:
        return derive_id(text)
    except NoId:
        return text


def _derivable(value: str) -> str:
    try:
        derive_id(value)
    except NoId as exc:
        raise PydanticCustomError(
            "no_id", "{value!r} {why}", {"value": value, "why": str(exc)}
        ) from None
    return value


def _an_id(value: str) -> str:
    if is_id(value):
        return value
    try:
        hint = f"; did you mean {derive_id(value)!r}?"
    except NoId:
        hint = ""
    raise PydanticCustomError(
        "not_an_id",
        "{value!r} is not an id (lower-case letters, digits and '-', at most {most}){hint}",
        {"value": value, "most": ID_MAX, "hint": hint},
    )


NameOrId = Annotated[ShortText, AfterValidator(_derivable)]
"""A name a person types, or an id: kept as given; its id is `derive_id` of it."""

IdInput = Annotated[str, AfterValidator(_an_id), Field(json_schema_extra={"pattern": ID_REGEX})]
"""An id that must be given as one (see ARCHITECTURE's decisions); a refusal suggests the id
the same derivation would make of what was typed."""
