"""Error messages say what a person needs: the field's own name, limits in characters, where
the JSON broke; and they quote no submitted free text (the echo policy in errors.py)."""

from __future__ import annotations

import httpx

from tests.support.intake import NEVER_MERGES, next_place


def report(**fields: object) -> dict[str, object]:
    lon, lat = next_place()
    body: dict[str, object] = {
        "channel": "citizen_app",
        "category": NEVER_MERGES.code,
        "location": {"lon": lon, "lat": lat},
    }
    body.update(fields)
    return body


async def test_a_length_limit_is_in_characters_and_names_the_field(
    http: httpx.AsyncClient,
) -> None:
    secret = "secret-words " + "x" * 3990  # 4003 characters, under the body limit
    response = await http.post("/api/v1/reports", json=report(description=secret))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "description", "reason": "at most 4000 characters"}
    ]
    too_many = await http.post("/api/v1/reports", json=report(media_urls=["http://a.cn/x"] * 6))
    assert too_many.json()["errors"] == [{"field": "media_urls", "reason": "at most 5 items"}]
    open311 = await http.post(
        "/open311/v2/requests.json",
        data={
            "service_code": NEVER_MERGES.code,
            "lat": "27.5",
            "long": "120.5",
            "description": secret,
        },
    )
    assert open311.status_code == 400
    assert open311.json() == [{"code": 400, "description": "description: at most 4000 characters"}]
    assert secret[:10] not in response.text + open311.text


async def test_a_json_decode_error_says_where(http: httpx.AsyncClient) -> None:
    broken = b'{\n  "channel": "citizen_app",\n  "category": \n}'
    headers = {"Content-Type": "application/json"}
    native = await http.post("/api/v1/reports", content=broken, headers=headers)
    assert native.status_code == 400
    [problem] = native.json()["errors"]
    assert problem["field"] is None
    assert problem["reason"] == (
        "the body is not valid JSON: Expecting value at line 4, column 1 (character 45)"
    )
    open311 = await http.post("/open311/v2/requests.xml", content=broken, headers=headers)
    assert open311.status_code == 400
    assert b"Expecting value at line 4, column 1 (character 45)" in open311.content


async def test_an_unknown_channel_names_the_channel_field(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/reports", json=report(channel="fax"))
    assert response.status_code == 422
    [problem] = response.json()["errors"]
    assert problem["field"] == "channel" and "citizen_app" in problem["reason"]
    extra = await http.post("/api/v1/reports", json=report(colour="red"))
    assert extra.json()["errors"] == [{"field": "colour", "reason": "is not a field of this body"}]


async def test_an_error_quotes_a_submitted_identifier_but_never_free_text(
    http: httpx.AsyncClient,
) -> None:
    code = await http.get("/open311/v2/services/roads.nothing.json")
    assert "'roads.nothing'" in code.json()[0]["description"]
    free_text = await http.get("/open311/v2/requests.json", params={"jurisdiction_id": "张三 138"})
    assert free_text.status_code == 404
    description = free_text.json()[0]["description"]
    assert "张三" not in description and "not shown" in description
