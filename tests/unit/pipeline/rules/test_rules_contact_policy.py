"""Reg F 7-in-7 and calling hours on hand-placed calls: local days, DST changes, edges to the minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipeline.rules.contact_policy import (
    CALLING_HOURS,
    REG_F_7_IN_7,
    ContactRecord,
    check_contact,
    contact_from_metadata,
)

NY = "America/New_York"
LA = "America/Los_Angeles"
AUCKLAND = "Pacific/Auckland"


def at(local: str, zone: str = NY) -> datetime:
    """An aware instant from a consumer-local wall time."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))


def call(job: str, started_at: datetime, zone: str = NY, consumer: str = "c-1") -> ContactRecord:
    return ContactRecord(job, consumer, started_at, zone)


def daily(first_day: str, count: int, *, hour: int = 10, zone: str = NY) -> list[ContactRecord]:
    """`count` calls, one a day at `hour` local time, from `first_day` on."""
    start = datetime.fromisoformat(first_day)
    return [
        call(f"h{i}", at((start + timedelta(days=i, hours=hour)).isoformat(), zone), zone)
        for i in range(count)
    ]


def codes(call_: ContactRecord, history: list[ContactRecord]) -> list[str]:
    return [f.code for f in check_contact(call_, history)]


def test_seventh_call_passes_and_eighth_is_flagged() -> None:
    history = daily("2024-06-04", 7)  # June 4-10, 10:00
    seventh = call("now", at("2024-06-10T14:00"))
    assert codes(seventh, history[:6]) == []
    eighth = check_contact(seventh, history)
    assert [f.code for f in eighth] == [REG_F_7_IN_7]
    finding = eighth[0]
    assert (finding.severity, finding.evidence) == ("high", [])
    assert "Call 8 " in finding.description
    assert "2024-06-04 to 2024-06-10" in finding.description


def test_only_earlier_calls_to_the_same_consumer_count_once_each() -> None:
    now = call("now", at("2024-06-10T14:00"))
    history = daily("2024-06-04", 6)
    later = call("later", at("2024-06-10T15:00"))
    other_consumer = call("x", at("2024-06-10T09:00"), consumer="c-2")
    itself = call("now", at("2024-06-10T14:00"))
    duplicate = history[0]
    assert codes(now, [*history, later, other_consumer, itself, duplicate]) == []
    assert codes(now, [*history, call("h6", at("2024-06-10T13:59"))]) == [REG_F_7_IN_7]


def test_simultaneous_calls_are_ordered_by_job_id() -> None:
    history = daily("2024-06-04", 6)
    same_time = at("2024-06-10T14:00")
    assert codes(call("job-a", same_time), [*history, call("job-b", same_time)]) == []
    assert codes(call("job-b", same_time), [*history, call("job-a", same_time)]) == [REG_F_7_IN_7]


def test_window_is_seven_local_calendar_days() -> None:
    now = call("now", at("2024-06-10T14:00"))
    six_in_window = daily("2024-06-05", 6)  # June 5-10 is days 2-7 of the window
    first_minute = call("edge", at("2024-06-04T00:00"))
    day_before = call("edge", at("2024-06-03T23:59"))
    assert codes(now, [*six_in_window, first_minute]) == [REG_F_7_IN_7]
    assert codes(now, [*six_in_window, day_before]) == []


def test_window_days_follow_the_consumer_zone_not_utc() -> None:
    # 20:00 UTC on June 1 is 08:00 on June 2 in Auckland (NZST, +12): the window is May 27 - June 2.
    now = call("now", datetime(2024, 6, 1, 20, 0, tzinfo=UTC), AUCKLAND)
    six = daily("2024-05-28", 6, hour=7, zone=AUCKLAND)
    inside = call("edge", datetime(2024, 5, 26, 12, 30, tzinfo=UTC), AUCKLAND)  # May 27 00:30
    outside = call("edge", datetime(2024, 5, 26, 11, 30, tzinfo=UTC), AUCKLAND)  # May 26 23:30
    assert codes(now, [*six, inside]) == [REG_F_7_IN_7]
    assert codes(now, [*six, outside]) == []


def test_window_across_the_fall_back_change_is_longer_than_168_hours() -> None:
    # New York falls back on 2024-11-03: Nov 3 00:10 EDT to Nov 9 23:30 EST is 7 days 20 minutes,
    # yet both are within the 7 calendar days Nov 3-9.
    now = call("now", at("2024-11-09T23:30"))
    first = call("first", at("2024-11-03T00:10"))
    assert now.started_at.astimezone(UTC) - first.started_at.astimezone(UTC) > timedelta(days=7)
    history = [first, *daily("2024-11-04", 6)]
    assert codes(now, history) == [REG_F_7_IN_7, CALLING_HOURS]


@pytest.mark.parametrize(
    ("local", "flagged"),
    [
        ("2024-06-10T07:59", True),
        ("2024-06-10T08:00", False),
        ("2024-06-10T20:59", False),
        ("2024-06-10T21:00", True),
        ("2024-06-10T00:00", True),
    ],
)
def test_calling_hours_edges(local: str, flagged: bool) -> None:
    assert codes(call("now", at(local, LA), LA), []) == ([CALLING_HOURS] if flagged else [])


def test_calling_hours_are_the_consumers_not_utc() -> None:
    # 15:30 UTC is a fine hour in London but 07:30 PST for a consumer in Los Angeles (UTC-8).
    findings = check_contact(call("now", datetime(2024, 3, 5, 15, 30, tzinfo=UTC), LA), [])
    assert [f.code for f in findings] == [CALLING_HOURS]
    assert "07:30 PST on 2024-03-05" in findings[0].description
    assert "America/Los_Angeles" in findings[0].description
    assert codes(call("now", datetime(2024, 3, 5, 16, 0, tzinfo=UTC), LA), []) == []


@pytest.mark.parametrize(
    ("instant", "flagged"),
    [
        (datetime(2024, 3, 9, 12, 0, tzinfo=UTC), True),  # EST: 07:00
        (datetime(2024, 3, 10, 12, 0, tzinfo=UTC), False),  # EDT from 2024-03-10: 08:00
        (datetime(2024, 11, 2, 12, 0, tzinfo=UTC), False),  # EDT: 08:00
        (datetime(2024, 11, 3, 12, 0, tzinfo=UTC), True),  # EST from 2024-11-03: 07:00
        (datetime(2024, 11, 4, 1, 59, tzinfo=UTC), False),  # EST: 20:59
        (datetime(2024, 11, 4, 2, 0, tzinfo=UTC), True),  # EST: 21:00
    ],
)
def test_calling_hours_across_dst_changes(instant: datetime, flagged: bool) -> None:
    assert codes(call("now", instant), []) == ([CALLING_HOURS] if flagged else [])


def test_limits_are_options() -> None:
    history = daily("2024-06-08", 3)
    now = call("now", at("2024-06-10T21:30"))
    assert codes(now, history) == [CALLING_HOURS]
    options: dict[str, Any] = {"max_calls": 3, "window_days": 3, "latest_hour": 22}
    assert [f.code for f in check_contact(now, history, **options)] == [REG_F_7_IN_7]


def test_record_needs_an_aware_time_and_a_known_zone() -> None:
    with pytest.raises(ValueError, match="aware"):
        ContactRecord("j", "c", datetime(2024, 6, 10, 9, 0), NY)
    with pytest.raises(ValueError, match="unknown time zone"):
        ContactRecord("j", "c", datetime(2024, 6, 10, 9, 0, tzinfo=UTC), "Mars/Olympus")


def test_metadata_with_an_offset() -> None:
    record = contact_from_metadata(
        "j1", {"consumer_id": "c-1", "call_started_at": "2024-06-10T09:15:00-04:00", "timezone": NY}
    )
    assert record == ContactRecord("j1", "c-1", datetime(2024, 6, 10, 13, 15, tzinfo=UTC), NY)
    zulu = contact_from_metadata(
        "j1", {"consumer_id": "c-1", "call_started_at": "2024-06-10T13:15:00Z", "timezone": NY}
    )
    assert zulu == record


def test_naive_metadata_time_is_local_to_the_consumer_zone() -> None:
    metadata = {
        "consumer_id": "c-1",
        "call_started_at": "2024-01-10T07:45:00",
        "timezone": "UTC",
        "consumer_timezone": LA,
    }
    record = contact_from_metadata("j1", metadata)
    assert record is not None
    assert record.timezone == LA
    assert record.started_at == datetime(2024, 1, 10, 15, 45, tzinfo=UTC)
    assert [f.code for f in check_contact(record, [])] == [CALLING_HOURS]


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"call_started_at": "2024-06-10T09:15:00-04:00", "timezone": NY},
        {"consumer_id": "", "call_started_at": "2024-06-10T09:15:00-04:00", "timezone": NY},
        {"consumer_id": 42, "call_started_at": "2024-06-10T09:15:00-04:00", "timezone": NY},
        {"consumer_id": "c-1", "timezone": NY},
        {"consumer_id": "c-1", "call_started_at": "yesterday", "timezone": NY},
        {"consumer_id": "c-1", "call_started_at": 1718025300, "timezone": NY},
        {"consumer_id": "c-1", "call_started_at": "2024-06-10T09:15:00-04:00"},
        {
            "consumer_id": "c-1",
            "call_started_at": "2024-06-10T09:15:00",
            "timezone": "Nowhere/Town",
        },
        {"consumer_id": "c-1", "call_started_at": "2024-06-10T09:15:00", "timezone": ""},
        {"consumer_id": "c-1", "call_started_at": "2024-06-10T09:15:00", "timezone": 5},
    ],
)
def test_unreadable_metadata_gives_none(metadata: dict[str, Any]) -> None:
    assert contact_from_metadata("j1", metadata) is None


def test_default_zone_when_metadata_has_none() -> None:
    metadata = {"consumer_id": "c-1", "call_started_at": "2024-06-10T09:15:00-04:00"}
    record = contact_from_metadata("j1", metadata, default_timezone="UTC")
    assert record is not None
    assert (record.timezone, record.started_at) == ("UTC", at("2024-06-10T09:15"))


def test_repeated_autumn_hour_is_ordered_by_instant() -> None:
    # On 2024-11-03 New York lives 01:00-02:00 twice: 01:30 EDT (05:30 UTC) comes before
    # 01:10 EST (06:10 UTC), although its wall clock reads later.
    edt = datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo(NY))
    est = datetime(2024, 11, 3, 1, 10, fold=1, tzinfo=ZoneInfo(NY))
    history = daily("2024-10-28", 6)  # Oct 28 - Nov 2
    assert codes(call("now", est), [*history, call("x", edt)]) == [REG_F_7_IN_7, CALLING_HOURS]
    assert codes(call("now", edt), [*history, call("x", est)]) == [CALLING_HOURS]
