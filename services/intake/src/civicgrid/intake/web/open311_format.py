"""Open311's two formats, chosen by the path's extension as the spec says (``.json``/``.xml``).

The XML follows the spec's examples: a root element holding one element per item (``<services>
<service>…``), fields in the order the JSON models declare them, lists nested as the examples
nest them (``<attributes><attribute>``, ``<values><value>``, ``<formats><format>``), booleans as
``true``/``false`` and a missing value as an empty element.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any
from xml.etree import ElementTree

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

XML_MEDIA_TYPE = "text/xml; charset=utf-8"

# A list field's element name -> the name of each of its items.
_ITEM_NAMES = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


class Format(StrEnum):
    JSON = "json"
    XML = "xml"


def format_of(path: str) -> Format:
    """The format a path asks for; JSON unless it ends in ``.xml``."""
    return Format.XML if path.lower().endswith(".xml") else Format.JSON


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _fill(element: ElementTree.Element, name: str, value: Any) -> None:
    child = ElementTree.SubElement(element, name)
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _fill(child, str(key), inner)
    elif isinstance(value, list):
        item_name = _ITEM_NAMES.get(name, "item")
        for item in value:
            _fill(child, item_name, item)
    else:
        child.text = _text(value)


def to_xml(root: str, item: str | None, data: Any) -> bytes:
    """``data`` is a list of items (each ``<item>`` under ``<root>``) or, with ``item`` None,
    one object whose fields go directly under ``<root>``."""
    plain = _plain(data)
    element = ElementTree.Element(root)
    if item is None:
        assert isinstance(plain, Mapping)
        for key, value in plain.items():
            _fill(element, str(key), value)
    else:
        for entry in plain:
            _fill(element, item, entry)
    text = ElementTree.tostring(element, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + text).encode("utf-8")


def respond(
    fmt: Format,
    data: Any,
    *,
    root: str,
    item: str | None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if fmt is Format.XML:
        return Response(
            to_xml(root, item, data),
            status_code=status_code,
            media_type=XML_MEDIA_TYPE,
            headers=dict(headers or {}),
        )
    return JSONResponse(_plain(data), status_code=status_code, headers=dict(headers or {}))


def error_response(
    fmt: Format, errors: Sequence[Mapping[str, Any]], status_code: int, headers: Mapping[str, str]
) -> Response:
    """The spec's error body: ``[{"code", "description"}]`` / ``<errors><error>``."""
    return respond(
        fmt, list(errors), root="errors", item="error", status_code=status_code, headers=headers
    )
