"""What each channel sends. One model per channel; all become one ``reported`` event.

The channel's own facts (a sensor's device id and reading, a camera's detection) go to
``channel_details``; the channel's reference (ticket, transfer, alarm number) to
``external_ref``, which also makes a resent report recognisable.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from civicgrid.city.datum import gcj02_to_wgs84
from civicgrid.events.base import GeoPoint
from civicgrid.events.incident_events import Channel, ReportDetails, Reporter, ScalarValue
from civicgrid.intake.domain.text import ExternalId, Line, Text

CategoryCode = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")]
Url = Annotated[str, Field(max_length=1000, pattern=r"^https?://[\x21-\x7e]+$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
AttributeCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
AttributeText = Annotated[Text, Field(max_length=1000)]
AttributeAnswer = bool | int | Finite | AttributeText | list[AttributeText]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Location(Strict):
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]


class ReporterIn(Strict):
    """The citizen. Stored for the callback; never logged, counted or echoed in an error."""

    name: Annotated[Line, Field(min_length=1, max_length=64)] | None = None
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 ()-]{2,30}$")] | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = (
        None
    )


Crs = Literal["WGS84", "GCJ-02"]


class ReportIn(Strict):
    """Fields every channel shares."""

    category: CategoryCode
    description: Annotated[Text, Field(max_length=4000)] = ""
    location: Location
    crs: Crs = Field(
        default="WGS84",
        description=(
            "The datum of ``location``: WGS84 (GPS, standard maps; the default) or GCJ-02 for"
            " apps built on Chinese web maps (AMap, Tencent). Stored and served as WGS84."
        ),
    )
    address: Annotated[Line, Field(max_length=500)] | None = None
    reporter: ReporterIn | None = None
    media_urls: Annotated[list[Url], Field(max_length=5)] = []
    external_ref: ExternalId | None = None
    # When it happened at the channel (the call, the alarm); defaults to receipt. At most
    # a few minutes ahead and seven days back.
    reported_at: AwareDatetime | None = None
    attributes: Annotated[dict[AttributeCode, AttributeAnswer], Field(max_length=50)] = {}
    idempotency_key: (
        Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[\x21-\x7e]+$")] | None
    ) = None
    correlation_id: ExternalId | None = None

    def channel_of(self) -> Channel:
        raise NotImplementedError

    @property
    def point(self) -> Location:
        """``location`` in WGS84, whatever datum the caller declared."""
        if self.crs == "GCJ-02":
            lon, lat = gcj02_to_wgs84(self.location.lon, self.location.lat)
            return Location(lon=lon, lat=lat)
        return self.location

    def channel_details(self) -> dict[str, ScalarValue]:
        return {}

    def extra_media(self) -> tuple[str, ...]:
        return ()

    def details(self, category: str | None = None) -> ReportDetails:
        reporter = None
        if self.reporter is not None and any(
            (self.reporter.name, self.reporter.phone, self.reporter.email)
        ):
            reporter = Reporter(
                name=self.reporter.name, phone=self.reporter.phone, email=self.reporter.email
            )
        return ReportDetails(
            channel=self.channel_of(),
            external_ref=self.external_ref,
            category=category or self.category,
            description=self.description,
            location=GeoPoint(lon=self.point.lon, lat=self.point.lat),
            address=self.address,
            reporter=reporter,
            media_urls=(*self.media_urls, *self.extra_media()),
            channel_details=self.channel_details(),
            attributes=dict(self.attributes),
        )


class HotlineReport(ReportIn):
    """12345 government hotline: the operator's ticket number is the reference."""

    channel: Literal["hotline_12345"] = "hotline_12345"
    external_ref: ExternalId
    operator_id: ExternalId | None = None

    def channel_of(self) -> Channel:
        return Channel.HOTLINE_12345

    def channel_details(self) -> dict[str, ScalarValue]:
        return {"operator_id": self.operator_id} if self.operator_id else {}


class PoliceTransferReport(ReportIn):
    """110 transfer: a police matter handed to city governance, with the transfer number."""

    channel: Literal["police_110"] = "police_110"
    external_ref: ExternalId
    police_station: Annotated[Line, Field(max_length=128)] | None = None

    def channel_of(self) -> Channel:
        return Channel.POLICE_110

    def channel_details(self) -> dict[str, ScalarValue]:
        return {"police_station": self.police_station} if self.police_station else {}


class SensorAlarmReport(ReportIn):
    """IoT sensor alarm: which device, what it read, against which threshold."""

    channel: Literal["iot_sensor"] = "iot_sensor"
    device_id: ExternalId
    reading: Finite
    reading_unit: Annotated[Line, Field(max_length=32)] | None = None
    threshold: Finite | None = None
    alarm_type: Annotated[Line, Field(max_length=64)] | None = None

    def channel_of(self) -> Channel:
        return Channel.IOT_SENSOR

    def channel_details(self) -> dict[str, ScalarValue]:
        details: dict[str, ScalarValue] = {"device_id": self.device_id, "reading": self.reading}
        if self.reading_unit:
            details["reading_unit"] = self.reading_unit
        if self.threshold is not None:
            details["threshold"] = self.threshold
        if self.alarm_type:
            details["alarm_type"] = self.alarm_type
        return details


class VideoDetectionReport(ReportIn):
    """Video AI detection: which camera saw what, how sure it is, and the snapshot."""

    channel: Literal["video_ai"] = "video_ai"
    camera_id: ExternalId
    detection_type: Annotated[Line, Field(min_length=1, max_length=64)]
    confidence: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    snapshot_url: Url | None = None

    def channel_of(self) -> Channel:
        return Channel.VIDEO_AI

    def channel_details(self) -> dict[str, ScalarValue]:
        return {
            "camera_id": self.camera_id,
            "detection_type": self.detection_type,
            "confidence": self.confidence,
        }

    def extra_media(self) -> tuple[str, ...]:
        return (self.snapshot_url,) if self.snapshot_url else ()


class GridPatrolReport(ReportIn):
    """A grid worker's patrol finding."""

    channel: Literal["grid_patrol"] = "grid_patrol"
    worker_id: ExternalId
    grid_id: ExternalId | None = None

    def channel_of(self) -> Channel:
        return Channel.GRID_PATROL

    def channel_details(self) -> dict[str, ScalarValue]:
        details: dict[str, ScalarValue] = {"worker_id": self.worker_id}
        if self.grid_id:
            details["grid_id"] = self.grid_id
        return details


class CitizenAppReport(ReportIn):
    """A citizen's app (or mini-program)."""

    channel: Literal["citizen_app"] = "citizen_app"
    app_user_id: ExternalId | None = None

    def channel_of(self) -> Channel:
        return Channel.CITIZEN_APP

    def channel_details(self) -> dict[str, ScalarValue]:
        return {"app_user_id": self.app_user_id} if self.app_user_id else {}


class Open311ClientReport(ReportIn):
    """An Open311 client that prefers this API or NATS to GeoReport's form posts."""

    channel: Literal["open311"] = "open311"
    token: ExternalId | None = None

    def channel_of(self) -> Channel:
        return Channel.OPEN311


CHANNEL_MODELS: dict[Channel, type[ReportIn]] = {
    Channel.HOTLINE_12345: HotlineReport,
    Channel.POLICE_110: PoliceTransferReport,
    Channel.IOT_SENSOR: SensorAlarmReport,
    Channel.VIDEO_AI: VideoDetectionReport,
    Channel.GRID_PATROL: GridPatrolReport,
    Channel.CITIZEN_APP: CitizenAppReport,
    Channel.OPEN311: Open311ClientReport,
}

AnyReport = Annotated[
    HotlineReport
    | PoliceTransferReport
    | SensorAlarmReport
    | VideoDetectionReport
    | GridPatrolReport
    | CitizenAppReport
    | Open311ClientReport,
    Field(discriminator="channel"),
]
