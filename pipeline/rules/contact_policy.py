"""Contact policy across calls: Reg F's 7-calls-in-7-days presumption and FDCPA calling hours.

Pure. Findings are about call metadata (when, how often), so they carry no utterance evidence;
their description states the facts (count, days, local time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.analysis import Finding

REG_F_7_IN_7 = "reg_f_7_in_7"
CALLING_HOURS = "calling_hours"
SEVERITY = "high"
CONSUMER_ID = "consumer_id"
STARTED_AT = "call_started_at"
TIMEZONE_KEYS = ("consumer_timezone", "timezone")  # the consumer's zone first: hours are theirs


@dataclass(frozen=True)
class ContactRecord:
    """One call attempt to a consumer. `started_at` is aware; `timezone` is the consumer's IANA zone."""

    job_id: str
    consumer_id: str
    started_at: datetime
    timezone: str

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None or self.started_at.utcoffset() is None:
            raise ValueError("started_at must be timezone-aware")
        _zone(self.timezone)  # raises ValueError for a name that is not an IANA zone
        # Held in UTC: Python compares and subtracts two times of one zone by wall clock,
        # which is wrong across a DST change (the repeated hour in autumn).
        object.__setattr__(self, "started_at", self.started_at.astimezone(UTC))

    def local_start(self) -> datetime:
        return self.started_at.astimezone(_zone(self.timezone))


def check_contact(
    call: ContactRecord,
    history: list[ContactRecord],
    *,
    max_calls: int = 7,
    window_days: int = 7,
    earliest_hour: int = 8,
    latest_hour: int = 21,
) -> list[Finding]:
    """Findings for `call` given other calls to consumers (`history`; other consumers are ignored).

    The frequency window is `window_days` consecutive calendar days in the consumer's local time,
    ending on the day of `call`; only calls before it count (ties broken by job id), so the
    finding marks the (max_calls + 1)-th call and every later one. Calling hours: a call starting
    before `earliest_hour`:00 or at/after `latest_hour`:00 local time is flagged.
    """
    findings = []
    frequency = _frequency(call, history, max_calls=max_calls, window_days=window_days)
    if frequency is not None:
        findings.append(frequency)
    hours = _calling_hours(call, earliest_hour=earliest_hour, latest_hour=latest_hour)
    if hours is not None:
        findings.append(hours)
    return findings


def _frequency(
    call: ContactRecord, history: list[ContactRecord], *, max_calls: int, window_days: int
) -> Finding | None:
    zone = _zone(call.timezone)
    last_day = call.local_start().date()
    first_day = last_day - timedelta(days=window_days - 1)
    prior = {
        h.job_id
        for h in history
        if h.consumer_id == call.consumer_id
        and h.job_id != call.job_id
        and (h.started_at, h.job_id) < (call.started_at, call.job_id)
        and first_day <= h.started_at.astimezone(zone).date() <= last_day
    }
    ordinal = len(prior) + 1
    if ordinal <= max_calls:
        return None
    description = (
        f"Call {ordinal} to this consumer within {window_days} consecutive days "
        f"({first_day.isoformat()} to {last_day.isoformat()}, {call.timezone}): more than {max_calls} calls "
        f"in {window_days} days is presumed harassment under Reg F (12 CFR 1006.14(b)(2))."
    )
    return Finding(code=REG_F_7_IN_7, description=description, severity=SEVERITY, evidence=[])


def _calling_hours(call: ContactRecord, *, earliest_hour: int, latest_hour: int) -> Finding | None:
    local = call.local_start()
    if earliest_hour <= local.hour < latest_hour:
        return None
    description = (
        f"Call started at {local:%H:%M} {local.tzname()} on {local.date().isoformat()} in the "
        f"consumer's time zone ({call.timezone}), outside {earliest_hour}:00 to {latest_hour}:00 "
        "(FDCPA 805(a)(1), Reg F 1006.6(b)(1)(i))."
    )
    return Finding(code=CALLING_HOURS, description=description, severity=SEVERITY, evidence=[])


def contact_from_metadata(
    job_id: str, metadata: dict[str, Any], *, default_timezone: str | None = None
) -> ContactRecord | None:
    """The contact a job's metadata describes, or None when it cannot be read. Never raises.

    Needs a non-empty string `consumer_id`, an ISO 8601 `call_started_at` and the consumer's IANA
    zone in `consumer_timezone` or `timezone` (else `default_timezone`). A naive time is local to
    that zone; a time with an offset is taken as the instant it names. None for anything missing,
    malformed, not a string, or naming an unknown zone.
    """
    consumer_id = metadata.get(CONSUMER_ID)
    raw_start = metadata.get(STARTED_AT)
    zone_name = next((metadata[k] for k in TIMEZONE_KEYS if metadata.get(k)), default_timezone)
    if not isinstance(consumer_id, str) or not consumer_id.strip():
        return None
    if not isinstance(raw_start, str) or not isinstance(zone_name, str):
        return None
    try:
        zone = _zone(zone_name)
        started_at = datetime.fromisoformat(raw_start.strip())
    except ValueError:
        return None
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=zone)
    return ContactRecord(job_id, consumer_id, started_at, zone_name)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
