"""The shipped city as intake sees it: its matter list is Open311's service list; an Open311
point is WGS84 and stored as it is, and a report that declares GCJ-02 is stored in WGS84."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import pytest
import yaml
from shapely.geometry import Point

from civicgrid.city import default_config_dir, load_city
from civicgrid.city.datum import wgs84_to_gcj02
from civicgrid.intake.admission import admit
from civicgrid.intake.catalogue import InMemoryCatalogue
from civicgrid.intake.city_catalogue import load_catalogue
from civicgrid.intake.domain.state import fold
from civicgrid.intake.errors import Refused
from civicgrid.intake.open311 import request_of
from civicgrid.intake.reports import CitizenAppReport, Location
from civicgrid.intake.web.open311_routes import Form, _report_from
from tests.support.events.factories import reported

NOW = datetime(2026, 5, 1, tzinfo=UTC)
DOWNTOWN_WGS84 = (120.5485, 27.5690)


@cache
def shipped() -> InMemoryCatalogue:
    return load_catalogue(None)


def test_the_service_list_is_matters_yaml() -> None:
    document = yaml.safe_load((default_config_dir() / "matters.yaml").read_text(encoding="utf-8"))
    assert [m.code for m in shipped().matters] == [m["code"] for m in document["matters"]]
    parking = shipped().matter("city-appearance.illegal-parking")
    assert parking is not None and parking.group == "市容环境" and parking.on_site
    assert [a.code for a in parking.attributes] == ["plate_number", "vehicle_type"]
    assert shipped().jurisdiction_id == "longgang"


def test_an_open311_point_is_stored_as_sent_and_shown_back_the_same() -> None:
    lon, lat = DOWNTOWN_WGS84
    fields = {"service_code": "city-appearance.illegal-parking", "lat": str(lat), "long": str(lon)}
    report = _report_from(Form(fields, {}), shipped())
    assert (report.point.lon, report.point.lat) == (lon, lat)
    admit(report, shipped(), NOW)

    event = reported("X1")
    stored = event.model_copy(
        update={"report": report.details().model_copy(update={"category": report.category})}
    )
    assert (stored.report.location.lon, stored.report.location.lat) == (lon, lat)
    shown = request_of(fold("X1", [stored]), shipped())
    assert (shown.long, shown.lat) == (lon, lat)


def test_a_report_declared_gcj02_is_stored_in_wgs84() -> None:
    lon, lat = DOWNTOWN_WGS84
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    report = CitizenAppReport(
        category="city-appearance.illegal-parking",
        location=Location(lon=gcj_lon, lat=gcj_lat),
        crs="GCJ-02",
    )
    admit(report, shipped(), NOW)
    stored = report.details().location
    assert (stored.lon, stored.lat) == pytest.approx((lon, lat), abs=1e-8)
    undeclared = CitizenAppReport(
        category="city-appearance.illegal-parking", location=Location(lon=gcj_lon, lat=gcj_lat)
    )
    assert undeclared.details().location.lon == gcj_lon  # WGS84 unless declared


def test_a_point_in_the_sea_inside_the_bounding_box_is_outside_the_city() -> None:
    bounds = shipped().bounds
    sea = Location(lon=bounds.max_lon - 0.001, lat=bounds.min_lat + 0.001)  # south-east: sea
    assert bounds.contain(sea.lon, sea.lat) and not shipped().contains(sea.lon, sea.lat)
    report = CitizenAppReport(category="city-appearance.illegal-parking", location=sea)
    with pytest.raises(Refused) as caught:
        admit(report, shipped(), NOW)
    assert [p.field for p in caught.value.problems] == ["location"]


def test_the_gazetteer_holds_the_citys_communities_grids_and_named_places() -> None:
    gazetteer = shipped().gazetteer
    city = load_city(default_config_dir())
    community = city.communities[0]
    found = gazetteer.resolve(f"{community.name}菜场门口")
    assert found is not None and found.area_id == community.id
    assert city.area(community.id).geometry.contains(Point(found.lon, found.lat))
    school = next(g for g in city.grids if g.name.endswith("专属网格"))
    facility = gazetteer.resolve(school.name.removesuffix("专属网格"))
    assert facility is not None and (facility.kind, facility.area_id) == ("place", school.id)
    grid = gazetteer.resolve(city.grids[5].id)
    assert grid is not None and grid.kind == "grid"
    misspelt = community.name[0] + "X" + community.name[2:]
    assert gazetteer.resolve(misspelt) is None
    assert community.name in gazetteer.close_matches(misspelt)
