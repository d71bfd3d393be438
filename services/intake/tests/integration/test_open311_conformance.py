"""Open311 GeoReport v2 conformance, in both formats, written from the spec's examples
(wiki.open311.org/GeoReport_v2) and FixMyStreet's servicerequestupdates extension: every
endpoint, the element names, order and nesting, the error bodies, form and JSON POSTs,
tokens, updates (GET and POST), discovery, jurisdiction_id and wrong methods."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from nats.js import JetStreamContext

from civicgrid.events.store import EventStore
from civicgrid.intake.catalogue import InMemoryCatalogue
from tests.support.events.waiting import eventually
from tests.support.intake import (
    DEV_KEY,
    GRID,
    NEVER_MERGES,
    OPEN311_KEY,
    POTHOLE,
    assign,
    next_place,
    stream_messages,
)

FORMATS = ("json", "xml")

# The spec's examples, element by element, in order.
SERVICE = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
ATTRIBUTE = [
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
]
REQUEST = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
POSTED = ["service_request_id", "service_notice", "account_id"]
UPDATE = [
    "update_id",
    "service_request_id",
    "status",
    "updated_datetime",
    "description",
    "media_url",
]


def xml(response: httpx.Response) -> ElementTree.Element:
    assert response.headers["content-type"].startswith("text/xml"), response.headers
    assert response.content.startswith(b"<?xml")
    return ElementTree.fromstring(response.content)


def tags(element: ElementTree.Element) -> list[str]:
    return [child.tag for child in element]


def text(element: ElementTree.Element, name: str) -> str:
    found = element.find(name)
    assert found is not None, (name, ElementTree.tostring(element))
    return found.text or ""


def items(response: httpx.Response, fmt: str, root: str, item: str) -> list[dict[str, Any]]:
    """The list in either format, as flat dicts of text (XML) or values (JSON)."""
    if fmt == "json":
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert isinstance(body, list)
        return body
    document = xml(response)
    assert document.tag == root
    assert all(child.tag == item for child in document)
    return [{child.tag: child.text or "" for child in entry} for entry in document]


def errors(response: httpx.Response, fmt: str) -> list[dict[str, Any]]:
    if fmt == "json":
        return [{"code": e["code"], "description": e["description"]} for e in response.json()]
    document = xml(response)
    assert document.tag == "errors" and tags(document) == ["error"] * len(document)
    found = []
    for error in document:
        assert tags(error) == ["code", "description"]
        found.append({"code": int(text(error, "code")), "description": text(error, "description")})
    return found


def form(service_code: str, **fields: str) -> dict[str, str]:
    lon, lat = next_place()
    body = {
        "api_key": DEV_KEY,
        "service_code": service_code,
        "lat": str(lat),
        "long": str(lon),
        "description": "井盖缺失",
        "first_name": "Wei",
        "phone": "13800000000",
    }
    body.update(fields)
    return body


async def post(http: httpx.AsyncClient, fmt: str, body: dict[str, str]) -> httpx.Response:
    return await http.post(f"/open311/v2/requests.{fmt}", data=body, headers={"X-API-Key": ""})


@pytest.mark.parametrize("fmt", FORMATS)
async def test_services_in_both_formats(http: httpx.AsyncClient, fmt: str) -> None:
    response = await http.get(f"/open311/v2/services.{fmt}")
    assert response.status_code == 200
    services = {s["service_code"]: s for s in items(response, fmt, "services", "service")}
    pothole = services[POTHOLE.code]
    assert pothole["service_name"] == "道路坑洼" and pothole["keywords"] == "坑, 路面"
    assert pothole["metadata"] in (True, "true")
    assert services[NEVER_MERGES.code]["metadata"] in (False, "false")
    if fmt == "xml":
        assert all(tags(service) == SERVICE for service in xml(response))


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_service_definition_nests_attributes_and_values(
    http: httpx.AsyncClient, fmt: str
) -> None:
    response = await http.get(f"/open311/v2/services/{POTHOLE.code}.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        lane = response.json()["attributes"][1]
        assert list(lane) == ATTRIBUTE
        assert lane["values"] == [{"key": "left", "name": "左"}, {"key": "right", "name": "右"}]
        return
    document = xml(response)
    assert document.tag == "service_definition"
    assert tags(document) == ["service_code", "attributes"]
    attributes = document.find("attributes")
    assert attributes is not None and tags(attributes) == ["attribute", "attribute"]
    lane = attributes[1]
    assert tags(lane) == ATTRIBUTE
    assert text(lane, "code") == "lane" and text(lane, "required") == "true"
    values = lane.find("values")
    assert values is not None and tags(values) == ["value", "value"]
    assert [(text(v, "key"), text(v, "name")) for v in values] == [("left", "左"), ("right", "右")]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_form_post_and_a_json_post_answer_in_the_chosen_format(
    http: httpx.AsyncClient, fmt: str
) -> None:
    created = await post(http, fmt, form(NEVER_MERGES.code))
    assert created.status_code == 201, created.text
    [receipt] = items(created, fmt, "service_requests", "request")
    assert list(receipt) == POSTED and receipt["service_request_id"]
    as_json = await http.post(f"/open311/v2/requests.{fmt}", json=form(NEVER_MERGES.code))
    assert as_json.status_code == 201, as_json.text
    [other] = items(as_json, fmt, "service_requests", "request")
    assert other["service_request_id"] != receipt["service_request_id"]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_request_reads_back_with_every_element_in_the_spec_order(
    http: httpx.AsyncClient, store: EventStore, fmt: str
) -> None:
    body = form(NEVER_MERGES.code, address_string="龙港大道 1 号")
    incident_id = (await post(http, "json", body)).json()[0]["service_request_id"]
    await assign(store, incident_id, GRID)
    one = await http.get(f"/open311/v2/requests/{incident_id}.{fmt}")
    assert one.status_code == 200
    [request] = items(one, fmt, "service_requests", "request")
    assert list(request) == REQUEST
    assert request["service_request_id"] == incident_id
    assert request["status"] == "open" and request["agency_responsible"] == GRID.name
    assert float(request["lat"]) == float(body["lat"])
    assert float(request["long"]) == float(body["long"])
    assert request["address"] == "龙港大道 1 号"
    assert "13800000000" not in one.text

    async def listed() -> list[dict[str, Any]] | None:
        response = await http.get(
            f"/open311/v2/requests.{fmt}", params={"service_code": NEVER_MERGES.code}
        )
        found = items(response, fmt, "service_requests", "request")
        return found if any(r["service_request_id"] == incident_id for r in found) else None

    listed_requests = await eventually(listed, what="the request listed")
    assert all(list(r) == REQUEST for r in listed_requests)
    by_id = await http.get(
        f"/open311/v2/requests.{fmt}", params={"service_request_id": incident_id}
    )
    assert [r["service_request_id"] for r in items(by_id, fmt, "service_requests", "request")] == [
        incident_id
    ]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_token_resolves_to_its_request(http: httpx.AsyncClient, fmt: str) -> None:
    token = f"conformance-token-{fmt}"
    created = await post(http, "json", form(NEVER_MERGES.code, token=token))
    incident_id = created.json()[0]["service_request_id"]
    response = await http.get(f"/open311/v2/tokens/{token}.{fmt}")
    assert response.status_code == 200
    assert items(response, fmt, "service_requests", "request") == [
        {"service_request_id": incident_id, "token": token}
    ]
    unknown = await http.get(f"/open311/v2/tokens/never-sent.{fmt}")
    assert unknown.status_code == 404
    assert errors(unknown, fmt)[0]["code"] == 404


async def _resolved(http: httpx.AsyncClient, store: EventStore) -> str:
    incident_id = (await post(http, "json", form(NEVER_MERGES.code))).json()[0][
        "service_request_id"
    ]
    await assign(store, incident_id)
    for command, body in (
        ("accept", {"unit": GRID.model_dump()}),
        ("resolve", {"unit": GRID.model_dump(), "resolution": "repaired"}),
    ):
        done = await http.post(f"/api/v1/incidents/{incident_id}/{command}", json=body)
        assert done.status_code == 200, done.text
    return incident_id


@pytest.mark.parametrize("fmt", FORMATS)
async def test_updates_list_in_fixmystreet_elements(
    http: httpx.AsyncClient, store: EventStore, fmt: str
) -> None:
    incident_id = await _resolved(http, store)

    async def mine() -> list[dict[str, Any]] | None:
        response = await http.get(f"/open311/v2/servicerequestupdates.{fmt}")
        # FixMyStreet's roots: service_requests_updates for the list (its own tests' XML),
        # service_request_updates for the answer to a POST.
        found = items(response, fmt, "service_requests_updates", "request_update")
        own = [u for u in found if u["service_request_id"] == incident_id]
        return own if len(own) == 4 else None

    updates = await eventually(mine, what="four updates")
    assert all(list(u) == UPDATE for u in updates)
    assert [u["status"] for u in updates] == ["open", "action_scheduled", "in_progress", "fixed"]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_still_not_fixed_reopens_a_resolved_request(
    http: httpx.AsyncClient, store: EventStore, fmt: str
) -> None:
    incident_id = await _resolved(http, store)
    body = {
        "api_key": DEV_KEY,
        "service_request_id": incident_id,
        "update_id": f"fms-{incident_id}-1",
        "status": "OPEN",
        "description": "Still not fixed",
        "updated_datetime": "2026-11-30T10:00:00Z",
    }
    posted = await http.post(
        f"/open311/v2/servicerequestupdates.{fmt}", data=body, headers={"X-API-Key": ""}
    )
    assert posted.status_code == 200, posted.text
    [answer] = items(posted, fmt, "service_request_updates", "request_update")
    history = await store.load(incident_id)
    types = [stored.event.event_type for stored in history.events]
    assert types[-2:] == ["callback_recorded", "reopened"]
    assert answer == {"update_id": history.events[-2].event.event_id}
    again = await http.post(
        f"/open311/v2/servicerequestupdates.{fmt}", data=body, headers={"X-API-Key": ""}
    )
    assert again.status_code == 200, again.text
    assert items(again, fmt, "service_request_updates", "request_update") == [answer]
    assert len((await store.load(incident_id)).events) == len(history.events)
    request = (await http.get(f"/open311/v2/requests/{incident_id}.json")).json()[0]
    assert request["status"] == "open"


async def test_an_update_on_a_closed_request_reopens_it_and_one_in_handling_is_refused(
    http: httpx.AsyncClient, store: EventStore, js: JetStreamContext
) -> None:
    incident_id = await _resolved(http, store)
    satisfied = {
        "api_key": DEV_KEY,
        "service_request_id": incident_id,
        "update_id": f"fms-{incident_id}-ok",
        "status": "FIXED",
    }
    ok = await http.post("/open311/v2/servicerequestupdates.json", data=satisfied)
    assert ok.status_code == 200, ok.text
    closed = await http.post(f"/api/v1/incidents/{incident_id}/close", json={})
    assert closed.status_code == 200, closed.text
    reopen = {**satisfied, "update_id": f"fms-{incident_id}-2", "status": "open"}
    reopened = await http.post("/open311/v2/servicerequestupdates.xml", data=reopen)
    assert reopened.status_code == 200, reopened.text
    last = (await store.load(incident_id)).events[-1].event
    assert last.event_type == "reopened"

    before = await stream_messages(js)
    comment = {**reopen, "update_id": f"fms-{incident_id}-3", "description": "any news?"}
    refused = await http.post("/open311/v2/servicerequestupdates.xml", data=comment)
    assert refused.status_code == 409
    assert "still being handled" in errors(refused, "xml")[0]["description"]
    no_rights = await http.post(
        "/open311/v2/servicerequestupdates.json",
        data={**comment, "api_key": OPEN311_KEY},
        headers={"X-API-Key": ""},
    )
    assert no_rights.status_code == 403
    assert "callback or reopen" in no_rights.json()[0]["description"]
    assert await stream_messages(js) == before


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_error_is_in_the_spec_error_format(
    http: httpx.AsyncClient, js: JetStreamContext, fmt: str
) -> None:
    before = await stream_messages(js)
    cases: list[tuple[str, str, dict[str, str] | None, int, str]] = [
        ("GET", f"services/roads.nothing.{fmt}", None, 404, "service_code"),
        ("GET", f"requests/NO-SUCH-REQUEST.{fmt}", None, 404, "was not found"),
        ("GET", f"requests.{fmt}?status=pending", None, 400, "status"),
        ("GET", f"requests.{fmt}?start_date=yesterday", None, 400, "start_date"),
        ("GET", f"servicerequestupdates.{fmt}?end_date=x", None, 400, "end_date"),
        ("POST", f"requests.{fmt}", form(NEVER_MERGES.code, api_key="wrong"), 403, "API key"),
        ("POST", f"requests.{fmt}", form("roads.no-such-thing"), 404, "service_code"),
        ("POST", f"requests.{fmt}", form(NEVER_MERGES.code, lat="95"), 400, "lat"),
        ("POST", f"servicerequestupdates.{fmt}", {"api_key": DEV_KEY}, 400, "service_request_id"),
    ]
    for method, path, body, status, words in cases:
        response = await http.request(
            method, f"/open311/v2/{path}", data=body, headers={"X-API-Key": ""}
        )
        assert response.status_code == status, (path, response.text)
        [error] = errors(response, fmt)
        assert error["code"] == status and words in error["description"], (path, error)
    assert await stream_messages(js) == before


@pytest.mark.parametrize("fmt", FORMATS)
async def test_jurisdiction_id_the_citys_own_is_accepted_another_is_404(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue, fmt: str
) -> None:
    own = await http.get(
        f"/open311/v2/services.{fmt}", params={"jurisdiction_id": catalogue.jurisdiction_id}
    )
    assert own.status_code == 200
    other = await http.get(f"/open311/v2/services.{fmt}", params={"jurisdiction_id": "sf.gov"})
    assert other.status_code == 404
    [error] = errors(other, fmt)
    assert "'sf.gov' is not served here" in error["description"]
    assert repr(catalogue.jurisdiction_id) in error["description"]
    posted = await post(http, fmt, form(NEVER_MERGES.code, jurisdiction_id="sf.gov"))
    assert posted.status_code == 404 and "jurisdiction_id" in errors(posted, fmt)[0]["description"]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_wrong_method_is_405_with_allow(http: httpx.AsyncClient, fmt: str) -> None:
    for method, path, allowed in (
        ("DELETE", f"requests.{fmt}", {"GET", "POST"}),
        ("POST", f"services.{fmt}", {"GET"}),
        ("PUT", f"tokens/abc.{fmt}", {"GET"}),
    ):
        response = await http.request(method, f"/open311/v2/{path}")
        assert response.status_code == 405, (method, path, response.text)
        assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
        [error] = errors(response, fmt)
        assert error["code"] == 405 and "method not allowed" in error["description"]


async def test_an_unknown_extension_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/open311/v2/services.yaml")
    assert response.status_code == 404
    assert ".json or .xml" in response.json()[0]["description"]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_service_discovery(http: httpx.AsyncClient, fmt: str) -> None:
    response = await http.get(f"/open311/discovery.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        document = response.json()
        assert list(document) == ["changeset", "contact", "key_service", "endpoints"]
        [endpoint] = document["endpoints"]
        assert endpoint["url"] == "http://intake/open311/v2"
        assert endpoint["formats"] == ["text/xml", "application/json"]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        return
    document_xml = xml(response)
    assert document_xml.tag == "discovery"
    assert tags(document_xml) == ["changeset", "contact", "key_service", "endpoints"]
    endpoints = document_xml.find("endpoints")
    assert endpoints is not None and tags(endpoints) == ["endpoint"]
    endpoint_xml = endpoints[0]
    assert tags(endpoint_xml) == ["specification", "url", "changeset", "type", "formats"]
    formats = endpoint_xml.find("formats")
    assert formats is not None
    assert [f.text for f in formats.iter("format")] == ["text/xml", "application/json"]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_address_string_naming_a_place_locates_a_request_without_lat_long(
    http: httpx.AsyncClient, js: JetStreamContext, fmt: str
) -> None:
    base = {"api_key": DEV_KEY, "service_code": NEVER_MERGES.code, "description": "路灯不亮"}
    placed = await post(http, fmt, {**base, "address_string": "江滨实验中学 东门"})
    assert placed.status_code == 201, placed.text
    [receipt] = items(placed, fmt, "service_requests", "request")
    shown = (await http.get(f"/open311/v2/requests/{receipt['service_request_id']}.json")).json()
    assert (shown[0]["long"], shown[0]["lat"]) == (120.72, 27.67)
    assert shown[0]["address"] == "江滨实验中学 东门"

    before = await stream_messages(js)
    unknown = await post(http, fmt, {**base, "address_string": "江宾社区"})
    assert unknown.status_code == 400
    [error] = errors(unknown, fmt)
    assert error["description"] == (
        "address_string: names no place in the city's gazetteer; close matches: 江滨社区"
    )
    nothing = await post(http, fmt, base)
    assert nothing.status_code == 400
    assert "or an address_string" in errors(nothing, fmt)[0]["description"]
    assert await stream_messages(js) == before
