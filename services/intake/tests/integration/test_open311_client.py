"""A real third-party Open311 client from PyPI (``georeport``, which speaks GeoReport v2 in
JSON and in XML through xmltodict) against intake served over HTTP by uvicorn, in both
formats: every call it makes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from georeport import GeoReport
from requests import HTTPError

from civicgrid.intake.catalogue import InMemoryCatalogue
from tests.support.intake import NEVER_MERGES, POTHOLE, next_place


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_the_georeport_client_reads_everything_in_both_formats(
    served_root: str, http: httpx.AsyncClient, catalogue: InMemoryCatalogue, fmt: str
) -> None:
    lon, lat = next_place()
    created = await http.post(
        "/open311/v2/requests.json",
        data={
            "service_code": NEVER_MERGES.code,
            "lat": str(lat),
            "long": str(lon),
            "description": f"seen by georeport ({fmt})",
        },
    )
    assert created.status_code == 201, created.text
    incident_id = created.json()[0]["service_request_id"]
    client = GeoReport(
        f"{served_root}/open311/v2", jurisdiction=catalogue.jurisdiction_id, output_format=fmt
    )

    services = await asyncio.to_thread(client.get_service_list)
    codes = [service["service_code"] for service in services]
    assert POTHOLE.code in codes and NEVER_MERGES.code in codes

    definition = await asyncio.to_thread(client.get_service_definition, POTHOLE.code)
    assert definition["service_code"] == POTHOLE.code
    attributes = definition["attributes"]
    # xmltodict nests repeated elements under their container; JSON is a plain list.
    lane = attributes[1] if fmt == "json" else attributes["attribute"][1]
    assert lane["code"] == "lane"

    one = await asyncio.to_thread(client.get_service_request, incident_id)
    assert one["service_request_id"] == incident_id
    assert one["description"] == f"seen by georeport ({fmt})"
    assert float(one["lat"]) == lat and float(one["long"]) == lon

    listed = await asyncio.to_thread(client.get_service_requests, service_request_id=incident_id)
    # xmltodict gives a single <request> as a dict, several as a list.
    entries = listed if isinstance(listed, list) else [listed]
    assert [entry["service_request_id"] for entry in entries] == [incident_id]

    other = GeoReport(f"{served_root}/open311/v2", jurisdiction="not-this-city", output_format=fmt)
    with pytest.raises(HTTPError) as refused:
        await asyncio.to_thread(other.get_service_list)
    assert refused.value.response.status_code == 404
