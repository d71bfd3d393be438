"""Text that is safe to store and show: valid UTF-8, no control characters, bounded.

JSON lets a client send lone surrogates (``"\\ud800"``) and NULs; both would pass a plain
``str`` field and fail later, far from the request, when the event is encoded or displayed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

_CONTROL_EXCEPT_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\r\n\t\u2028\u2029]")


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid UTF-8 text (no lone surrogates)") from exc
    if _CONTROL_EXCEPT_LAYOUT.search(value):
        raise ValueError("must not contain control characters")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\r\n\t" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _single_line(value: str) -> str:
    value = _encodable(value)
    if _LINE_BREAKS.search(value):
        raise ValueError("must be a single line")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# Free text (descriptions, notes, reasons): line breaks allowed.
Text = Annotated[str, AfterValidator(_encodable)]
# Names, addresses, short labels.
Line = Annotated[str, AfterValidator(_single_line)]
# Identifiers other systems give us (ticket numbers, device ids): printable ASCII, no spaces.
ExternalId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]+$", max_length=128)]
# Something that must say something.
Reason = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_not_blank)]
NotBlank = AfterValidator(_not_blank)
