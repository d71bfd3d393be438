"""WGS84 <-> GCJ-02: civicgrid is WGS84; GCJ-02 is converted where a caller declares it."""

from __future__ import annotations

from civicgrid.city.datum import gcj02_to_wgs84, wgs84_to_gcj02


def test_matches_the_published_reference_point() -> None:
    # Beijing, the reference vector the common coordtransform libraries test against.
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert abs(lon - 116.41024449916938) < 1e-9 and abs(lat - 39.91640428150164) < 1e-9


def test_the_inverse_returns_to_the_start_in_longgang() -> None:
    lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(120.55, 27.55))
    assert abs(lon - 120.55) < 1e-8 and abs(lat - 27.55) < 1e-8


def test_outside_china_nothing_moves() -> None:
    assert wgs84_to_gcj02(-122.42, 37.77) == (-122.42, 37.77)
