"""Partitions of the Component's assets, in YAML: every partitions definition Dagster offers.

``type`` picks the definition: ``static``, ``daily`` (the default, so a bare
``{start_date: ...}`` is daily), ``hourly``, ``weekly``, ``monthly``,
``time_window`` (any cron schedule) or ``dynamic``. The fields are those of the
Dagster class of the same name.

Fragments of ``defs.yaml``::

    partitions: {type: static, partition_keys: [eu, us, apac]}
    partitions: {start_date: "2026-11-01", timezone: Europe/Berlin}
    partitions: {type: hourly, start_date: "2026-11-01-00:00", end_offset: 1}
    partitions: {type: time_window, start_date: "2026-11-01", cron_schedule: "0 */6 * * *", fmt: "%Y-%m-%d-%H:%M"}
    partitions: {type: dynamic, name: customers}
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

_START = "First partition: YYYY-MM-DD (hourly and time_window: a string in `fmt`)."
_END = "End of the last partition (exclusive); none: open-ended."
_TZ = "Timezone of the partition boundaries (default UTC)."
_OFFSET = "Extra partitions past the last complete one (1 includes the current one)."


class StaticPartitions(dg.Model, dg.Resolvable):
    """A fixed list of partition keys (``StaticPartitionsDefinition``)."""

    type: Literal["static"] = Field(description="static")
    partition_keys: list[str] = Field(min_length=1, description="The partition keys.")

    def build(self) -> dg.PartitionsDefinition:
        return dg.StaticPartitionsDefinition(self.partition_keys)


class DailyPartitions(dg.Model, dg.Resolvable):
    """One partition per day (``DailyPartitionsDefinition``); ``type`` may be left out."""

    type: Literal["daily"] = Field(default="daily", description="daily (the default)")
    start_date: str = Field(description=_START)
    end_date: str | None = Field(default=None, description=_END)
    timezone: str | None = Field(default=None, description=_TZ)
    minute_offset: int = Field(default=0, description="Minutes past the hour the day starts.")
    hour_offset: int = Field(default=0, description="Hours past midnight the day starts.")
    end_offset: int = Field(default=0, description=_OFFSET)

    def build(self) -> dg.PartitionsDefinition:
        return dg.DailyPartitionsDefinition(start_date=self.start_date, end_date=self.end_date, timezone=self.timezone,
                                            minute_offset=self.minute_offset, hour_offset=self.hour_offset,
                                            end_offset=self.end_offset)


class HourlyPartitions(dg.Model, dg.Resolvable):
    """One partition per hour (``HourlyPartitionsDefinition``), keys ``YYYY-MM-DD-HH:MM``."""

    type: Literal["hourly"] = Field(description="hourly")
    start_date: str = Field(description="First partition: YYYY-MM-DD-HH:MM (or YYYY-MM-DD).")
    end_date: str | None = Field(default=None, description=_END)
    timezone: str | None = Field(default=None, description=_TZ)
    minute_offset: int = Field(default=0, description="Minutes past the hour each partition starts.")
    end_offset: int = Field(default=0, description=_OFFSET)

    def build(self) -> dg.PartitionsDefinition:
        return dg.HourlyPartitionsDefinition(start_date=self.start_date, end_date=self.end_date, timezone=self.timezone,
                                             minute_offset=self.minute_offset, end_offset=self.end_offset)


class WeeklyPartitions(dg.Model, dg.Resolvable):
    """One partition per week (``WeeklyPartitionsDefinition``)."""

    type: Literal["weekly"] = Field(description="weekly")
    start_date: str = Field(description=_START)
    end_date: str | None = Field(default=None, description=_END)
    timezone: str | None = Field(default=None, description=_TZ)
    minute_offset: int = Field(default=0, description="Minutes past the hour the week starts.")
    hour_offset: int = Field(default=0, description="Hours past midnight the week starts.")
    day_offset: int = Field(default=0, description="Weekday the week starts (0 = Sunday).")
    end_offset: int = Field(default=0, description=_OFFSET)

    def build(self) -> dg.PartitionsDefinition:
        return dg.WeeklyPartitionsDefinition(start_date=self.start_date, end_date=self.end_date, timezone=self.timezone,
                                             minute_offset=self.minute_offset, hour_offset=self.hour_offset,
                                             day_offset=self.day_offset, end_offset=self.end_offset)


class MonthlyPartitions(dg.Model, dg.Resolvable):
    """One partition per month (``MonthlyPartitionsDefinition``)."""

    type: Literal["monthly"] = Field(description="monthly")
    start_date: str = Field(description=_START)
    end_date: str | None = Field(default=None, description=_END)
    timezone: str | None = Field(default=None, description=_TZ)
    minute_offset: int = Field(default=0, description="Minutes past the hour the month starts.")
    hour_offset: int = Field(default=0, description="Hours past midnight the month starts.")
    day_offset: int = Field(default=1, description="Day of the month the month starts (1-28).")
    end_offset: int = Field(default=0, description=_OFFSET)

    def build(self) -> dg.PartitionsDefinition:
        return dg.MonthlyPartitionsDefinition(start_date=self.start_date, end_date=self.end_date,
                                              timezone=self.timezone, minute_offset=self.minute_offset,
                                              hour_offset=self.hour_offset, day_offset=self.day_offset,
                                              end_offset=self.end_offset)


class TimeWindowPartitions(dg.Model, dg.Resolvable):
    """Partitions on any cron schedule (``TimeWindowPartitionsDefinition``)."""

    type: Literal["time_window"] = Field(description="time_window")
    cron_schedule: str = Field(description="When each partition starts, e.g. '0 */6 * * *'.")
    start_date: str = Field(description="First partition, a string in `fmt`.")
    fmt: str = Field(default="%Y-%m-%d-%H:%M", description="strftime format of the partition keys.")
    end_date: str | None = Field(default=None, description=_END)
    timezone: str | None = Field(default=None, description=_TZ)
    end_offset: int = Field(default=0, description=_OFFSET)

    def build(self) -> dg.PartitionsDefinition:
        return dg.TimeWindowPartitionsDefinition(cron_schedule=self.cron_schedule, start=self.start_date, fmt=self.fmt,
                                                 end=self.end_date, timezone=self.timezone,
                                                 end_offset=self.end_offset)


class DynamicPartitions(dg.Model, dg.Resolvable):
    """Partition keys added at run time (``DynamicPartitionsDefinition``), e.g. by a sensor."""

    type: Literal["dynamic"] = Field(description="dynamic")
    name: str = Field(description="Name of the dynamic partitions set (shared with the upstream).")

    def build(self) -> dg.PartitionsDefinition:
        return dg.DynamicPartitionsDefinition(name=self.name)


SutroPartitions = (StaticPartitions | DailyPartitions | HourlyPartitions | WeeklyPartitions | MonthlyPartitions
                   | TimeWindowPartitions | DynamicPartitions)
"""Any of the partitions models; a mapping without ``type`` is daily."""
