"""Bad configuration fails at load, naming the file, the line or feature, and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from civicgrid.city import CityConfigError, load_city


def edit_matter(config: Path, code: str, old: str, new: str, filename: str = "matters.yaml") -> int:
    """Replace the first `old` after `- code: <code>` (or `- id: <code>`); return its line."""
    path = config / filename
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(
        i for i, line in enumerate(lines) if line.strip() in (f"- code: {code}", f"- id: {code}")
    )
    for i in range(start, len(lines)):
        if old in lines[i]:
            lines[i] = lines[i].replace(old, new, 1)
            path.write_text("".join(lines), encoding="utf-8")
            return i + 1
    raise AssertionError(f"{old!r} not found after {code!r}")


def item_line(config: Path, code: str, filename: str = "matters.yaml") -> int:
    lines = (config / filename).read_text(encoding="utf-8").splitlines()
    return 1 + next(i for i, line in enumerate(lines) if line.strip() == f"- code: {code}")


def edit_features(config: Path, change: Any) -> None:
    path = config / "city.geojson"
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document["features"])
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def feature_index(config: Path, feature_id: str) -> int:
    document = json.loads((config / "city.geojson").read_text(encoding="utf-8"))
    return next(
        i for i, f in enumerate(document["features"]) if f["properties"]["id"] == feature_id
    )


def load_error(config: Path) -> str:
    with pytest.raises(CityConfigError) as caught:
        load_city(config)
    return str(caught.value)


def test_an_unknown_lead_unit_names_the_matter_and_its_line(config_copy: Path) -> None:
    line = edit_matter(
        config_copy, "roads.road-damage", "lead_unit: dept-housing", "lead_unit: dept-nowhere"
    )
    message = load_error(config_copy)
    assert f"matters.yaml, line {line}, matter 'roads.road-damage'" in message
    assert "unknown unit 'dept-nowhere' (not in units.yaml)" in message


def test_an_unknown_fallback_unit_points_at_the_list_entry(config_copy: Path) -> None:
    line = edit_matter(config_copy, "roads.road-damage", "[dept-transport]", "[dept-transport-x]")
    message = load_error(config_copy)
    assert f"matters.yaml, line {line}, matter 'roads.road-damage'" in message
    assert "fallback_units: unknown unit 'dept-transport-x'" in message


def test_an_unknown_sla_class_names_the_known_ones(config_copy: Path) -> None:
    line = edit_matter(config_copy, "water.pipe-burst", "sla_class: urgent", "sla_class: asap")
    message = load_error(config_copy)
    assert f"matters.yaml, line {line}, matter 'water.pipe-burst'" in message
    assert "unknown SLA class 'asap'" in message
    assert "standard, on_site, urgent, difficult" in message


def test_a_duplicate_matter_code_points_at_both_lines(config_copy: Path) -> None:
    first = item_line(config_copy, "city-appearance.illegal-parking")
    second = edit_matter(
        config_copy,
        "city-appearance.street-vending",
        "city-appearance.street-vending",
        "city-appearance.illegal-parking",
    )
    message = load_error(config_copy)
    assert f"matters.yaml, line {second}, matter 'city-appearance.illegal-parking'" in message
    assert f"duplicate code, first on line {first}" in message


def test_a_social_org_matter_must_be_transferred_to_its_lead(config_copy: Path) -> None:
    edit_matter(
        config_copy,
        "ent-bikes",
        "matters: [city-appearance.shared-bikes]",
        "matters: []",
        filename="units.yaml",
    )
    message = load_error(config_copy)
    assert "matters.yaml, line" in message
    assert "matter 'city-appearance.shared-bikes'" in message
    assert "not transferred to enterprise 'ent-bikes'" in message


def test_a_department_cannot_lead_a_social_org_matter(config_copy: Path) -> None:
    line = edit_matter(
        config_copy, "water.water-outage", "lead_unit: ent-water", "lead_unit: dept-water"
    )
    message = load_error(config_copy)
    assert f"matters.yaml, line {line}, matter 'water.water-outage'" in message
    assert "department 'dept-water' cannot lead a social_org-level matter" in message


def test_a_transferred_matter_must_exist(config_copy: Path) -> None:
    line = edit_matter(
        config_copy,
        "ent-gas",
        "safety.gas-leak,",
        "safety.gas-leek, safety.gas-leak,",
        "units.yaml",
    )
    message = load_error(config_copy)
    assert f"units.yaml, line {line}, unit 'ent-gas'" in message
    assert "transferred matter 'safety.gas-leek' is not in matters.yaml" in message


def test_a_missing_required_field_names_the_field(config_copy: Path) -> None:
    edit_matter(config_copy, "roads.bus-service", "on_site: false", "# on_site left out")
    line = item_line(config_copy, "roads.bus-service")
    message = load_error(config_copy)
    assert (
        f"matters.yaml, line {line}, matter 'roads.bus-service': on_site: Field required" in message
    )


def test_an_on_site_matter_needs_an_sla_class_with_an_arrival_deadline(config_copy: Path) -> None:
    line = edit_matter(config_copy, "roads.bus-service", "on_site: false", "on_site: true")
    message = load_error(config_copy)
    assert f"matters.yaml, line {line}, matter 'roads.bus-service'" in message
    assert "has no 'arrive' deadline" in message


def test_malformed_yaml_names_the_file_and_line(config_copy: Path) -> None:
    path = config_copy / "routing.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = next(i for i, line in enumerate(lines) if line.startswith("policy_version"))
    lines[bad] = "policy_version: [1, 2"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = load_error(config_copy)
    assert "routing.yaml, line" in message
    assert "malformed YAML" in message


def test_a_key_given_twice_is_refused(config_copy: Path) -> None:
    path = config_copy / "calendar.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "timezone: Europe/Berlin\n", encoding="utf-8")
    line = len((text + "timezone: Europe/Berlin\n").splitlines())
    message = load_error(config_copy)
    assert f"calendar.yaml, line {line}: key 'timezone' appears twice" in message


def test_a_bad_value_in_sla_yaml_names_the_class_and_line(config_copy: Path) -> None:
    path = config_copy / "sla.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = next(i for i, line in enumerate(lines) if line.strip() == "resolve: 5wd")
    lines[bad] = "    resolve: five days"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = load_error(config_copy)
    assert f"sla.yaml, line {bad + 1}, SLA class 'difficult': resolve:" in message
    assert "'five days' is not a duration" in message


def test_an_unknown_time_zone_is_refused(config_copy: Path) -> None:
    path = config_copy / "calendar.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("Asia/Shanghai", "Asia/Longgang"), encoding="utf-8"
    )
    assert "unknown time zone 'Asia/Longgang'" in load_error(config_copy)


def test_a_missing_file_is_named(config_copy: Path) -> None:
    (config_copy / "units.yaml").unlink()
    message = load_error(config_copy)
    assert "units.yaml: file is missing" in message


def test_a_parent_id_pointing_nowhere_names_the_feature(config_copy: Path) -> None:
    position = feature_index(config_copy, "c03-g002")

    def change(features: list[Any]) -> None:
        features[position]["properties"]["parent_id"] = "c99"

    edit_features(config_copy, change)
    message = load_error(config_copy)
    assert f"city.geojson, features[{position}] (id 'c03-g002')" in message
    assert "parent_id 'c99' points to no feature" in message


def test_a_micro_grid_cannot_hang_directly_under_a_community(config_copy: Path) -> None:
    position = feature_index(config_copy, "c03-g002-m01")

    def change(features: list[Any]) -> None:
        features[position]["properties"]["parent_id"] = "c03"

    edit_features(config_copy, change)
    message = load_error(config_copy)
    assert f"features[{position}] (id 'c03-g002-m01')" in message
    assert "parent_id 'c03' is a community, but a micro_grid's parent must be a grid" in message


def test_a_duplicate_feature_id_is_refused(config_copy: Path) -> None:
    position = feature_index(config_copy, "c03-g002-m02")

    def change(features: list[Any]) -> None:
        features[position]["properties"]["id"] = "c03-g002-m01"

    edit_features(config_copy, change)
    message = load_error(config_copy)
    assert f"features[{position}] (id 'c03-g002-m01'): duplicate id" in message


def test_a_self_intersecting_polygon_is_refused(config_copy: Path) -> None:
    position = feature_index(config_copy, "c04-g003-m02")

    def change(features: list[Any]) -> None:
        ring = features[position]["geometry"]["coordinates"][0]
        xs, ys = [c[0] for c in ring], [c[1] for c in ring]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        bow_tie = [[x0, y0], [x1, y1], [x1, y0], [x0, y1], [x0, y0]]
        features[position]["geometry"] = {"type": "Polygon", "coordinates": [bow_tie]}

    edit_features(config_copy, change)
    message = load_error(config_copy)
    assert f"city.geojson, features[{position}] (id 'c04-g003-m02'): invalid polygon" in message
    assert "Self-intersection" in message


def test_a_micro_grid_outside_its_grid_is_refused(config_copy: Path) -> None:
    position = feature_index(config_copy, "c04-g003-m02")
    elsewhere = feature_index(config_copy, "c20-g001-m01")

    def change(features: list[Any]) -> None:
        features[position]["geometry"] = features[elsewhere]["geometry"]

    edit_features(config_copy, change)
    message = load_error(config_copy)
    assert (
        f"features[{position}] (id 'c04-g003-m02'): lies outside its parent 'c04-g003'" in message
    )


def test_an_unknown_property_is_refused(config_copy: Path) -> None:
    position = feature_index(config_copy, "c01")

    def change(features: list[Any]) -> None:
        features[position]["properties"]["population"] = 12000

    edit_features(config_copy, change)
    message = load_error(config_copy)
    assert f"features[{position}] (id 'c01'): population: Extra inputs are not permitted" in message
    # Its grids do not pile on with "parent points nowhere": one problem, one line.
    assert "\n" not in message


def test_every_problem_is_reported_at_once(config_copy: Path) -> None:
    edit_matter(
        config_copy, "roads.road-damage", "lead_unit: dept-housing", "lead_unit: dept-nowhere"
    )
    edit_matter(config_copy, "water.pipe-burst", "sla_class: urgent", "sla_class: asap")
    message = load_error(config_copy)
    assert "(2 problems)" in message
    assert "dept-nowhere" in message
    assert "asap" in message


def test_counts_are_not_enforced_so_a_smaller_city_loads(config_copy: Path) -> None:
    def change(features: list[Any]) -> None:
        features[:] = [f for f in features if not f["properties"]["id"].startswith("c26")]

    edit_features(config_copy, change)
    city = load_city(config_copy)
    assert len(city.communities) == 25
    assert all(not g.id.startswith("c26") for g in city.grids)


def test_a_city_in_another_datum_than_wgs84_is_refused(config_copy: Path) -> None:
    path = config_copy / "city.geojson"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["metadata"]["coordinate_system"] = "GCJ-02"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    message = load_error(config_copy)
    assert "metadata.coordinate_system" in message
    assert "must be WGS84 (RFC 7946), not 'GCJ-02'" in message
