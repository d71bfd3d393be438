"""Upcasters: an event written with an old schema_version loads as the current model.

Each upcaster takes the stored JSON object at version N and returns it at version N+1;
``upcast`` applies them in a loop until the current version is reached, so a v1 event
of a type that is now at v3 passes through v1->v2 and v2->v3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JsonObject = dict[str, Any]
Upcaster = Callable[[JsonObject], JsonObject]

_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UpcastError(ValueError):
    pass


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(function: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = function
        return function

    return register


def upcast(data: JsonObject, current_version: int) -> JsonObject:
    event_type = str(data.get("event_type"))
    version = int(data.get("schema_version", 1))
    if version > current_version:
        raise UpcastError(
            f"{event_type} schema_version {version} is newer than this code knows"
            f" ({current_version}); deploy the newer contract"
        )
    while version < current_version:
        step = _UPCASTERS.get((event_type, version))
        if step is None:
            raise UpcastError(f"no upcaster for {event_type} from schema_version {version}")
        data = step(data)
        version += 1
        data["schema_version"] = version
    return data


@upcaster("reported", from_version=1)
def reported_v1_to_v2(data: JsonObject) -> JsonObject:
    """v1 kept the report's fields flat on the event and the reporter as two strings.

    v2 nests them in ``report`` (shared with ``merged``) with a ``reporter`` object.
    """
    report_fields = (
        "channel",
        "external_ref",
        "category",
        "description",
        "address",
        "media_urls",
        "channel_details",
        "attributes",
    )
    upgraded = {key: value for key, value in data.items() if key not in report_fields}
    report: JsonObject = {key: data[key] for key in report_fields if key in data}
    report["location"] = {"lon": upgraded.pop("lon"), "lat": upgraded.pop("lat")}
    name = upgraded.pop("reporter_name", None)
    phone = upgraded.pop("reporter_phone", None)
    if name is not None or phone is not None:
        report["reporter"] = {"name": name, "phone": phone}
    upgraded["report"] = report
    return upgraded
