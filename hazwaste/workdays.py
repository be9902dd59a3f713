"""Working days for the manifest deadlines: Monday to Friday, less public holidays, plus the adjusted working
weekends (调休) that the State Council announces each year. Both lists are data to configure per year; with
none given, every Monday to Friday is a working day."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(cls, holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> WorkCalendar:
        return cls(frozenset(holidays), frozenset(extra_workdays))

    def is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_workdays(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (the day itself does not count)."""
        count = 0
        while count < n:
            day += timedelta(days=1)
            count += self.is_workday(day)
        return day

    def due(self, event_at: datetime, n: int, tz: str) -> datetime:
        """When "within ``n`` working days" of ``event_at`` runs out: the start of the day after the n-th working
        day, in the site's time zone (counted from the next day, as Chinese rules count time limits)."""
        zone = ZoneInfo(tz)
        last = self.add_workdays(event_at.astimezone(zone).date(), n)
        return datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
