"""A sensor that sees Sutro jobs finished outside Dagster (a notebook, the ``sutro`` SDK
or CLI, another scheduler) and reports each as an :class:`dagster.AssetObservation`
of a mapped asset, and optionally starts a run for it, like the polling sensors of
``dagster-dbt`` (dbt Cloud) and ``dagster-fivetran``.

Each tick pages ``list-jobs`` newest first and stops below what the previous tick
already settled. The cursor (JSON) holds:

* ``horizon``: the creation time of the newest job seen so far, and ``at_horizon``
  the ids created at exactly that time;
* ``open``: the matching jobs that were not finished yet (id -> creation time).

A job is reported once, on the first tick that sees it finished: either it is new
(created after the horizon) or it was open. Paging stops at the first job created
before both the horizon and the oldest open job: everything older was settled by an
earlier tick. The first tick (no cursor) looks back ``initial_lookback_seconds``.
Jobs that stay queued for long keep the tick paging down to them.

By default the package's own jobs (the deterministic ``sp-<run key>-s0000-a000``
names of Airflow tasks and Dagster assets) are left out: their assets already report
them as materializations.

Example::

    import dagster as dg
    from dagster_sutro import SutroResource, build_sutro_jobs_sensor

    notebook_jobs = build_sutro_jobs_sensor(asset_key="support/tickets_triaged_adhoc",
                                            job_name_prefix="triage-")
    defs = dg.Definitions(sensors=[notebook_jobs],
                          resources={"sutro": SutroResource(api_url=dg.EnvVar("SUTRO_API_URL"),
                                                            api_key=dg.EnvVar("SUTRO_API_KEY"),
                                                            staging_url="s3://my-bucket/sutro")})
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dagster_sutro.asset_decorator import DEFAULT_RESOURCE_KEY
from dagster_sutro.metadata import job_metadata, utc_timestamp
from sutro_providers.client.models import JobRecord, JobStatus
from sutro_providers.client.sutro import SutroClient
from sutro_providers.identity import is_package_job_name

DEFAULT_SENSOR_INTERVAL_SECONDS = 60
DEFAULT_INITIAL_LOOKBACK_SECONDS = 3600.0
DEFAULT_STATUSES: tuple[str, ...] = ("SUCCEEDED", "FAILED", "CANCELLED")
CURSOR_VERSION = 1

AssetKeyFor = Callable[[JobRecord], "dg.AssetKey | str | None"]


@dataclass
class JobsCursor:
    """What the last tick settled (see the module docstring); serialised as JSON."""

    horizon: float
    at_horizon: set[str] = field(default_factory=set)
    open: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> JobsCursor | None:
        if not text:
            return None
        data = json.loads(text)
        if data.get("v") != CURSOR_VERSION:
            raise ValueError(f"unknown cursor version {data.get('v')!r}")
        return cls(float(data["horizon"]), set(data.get("at_horizon", [])),
                   {str(k): float(v) for k, v in data.get("open", {}).items()})

    def dump(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "horizon": self.horizon, "at_horizon": sorted(self.at_horizon),
                           "open": dict(sorted(self.open.items()))}, separators=(",", ":"))

    @property
    def stop_before(self) -> float:
        """Jobs created before this were settled by an earlier tick."""
        return min([self.horizon, *self.open.values()])

    def knows(self, job_id: str, created: float) -> bool:
        """Whether the job was visible to the last tick."""
        return created < self.horizon or (created == self.horizon and job_id in self.at_horizon)


@dataclass
class TickResult:
    """The finished jobs one tick reports, and the cursor for the next tick."""

    finished: list[JobRecord]
    cursor: JobsCursor
    jobs_read: int = 0


def _created(job: JobRecord) -> float | None:
    return utc_timestamp(job.datetime_created) if job.datetime_created is not None else None


def scan_jobs(jobs: Iterator[JobRecord], cursor: JobsCursor | None, *, now: float, initial_lookback_seconds: float,
              matches: Callable[[JobRecord], bool]) -> TickResult:
    """One tick over ``jobs`` (newest first): the matching jobs finished since
    ``cursor``, and the next cursor. Pure: the sensor feeds it ``list-jobs``."""
    stop_before = cursor.stop_before if cursor is not None else now - initial_lookback_seconds
    horizon = cursor.horizon if cursor is not None else stop_before
    at_horizon = set(cursor.at_horizon) if cursor is not None else set()
    still_open: dict[str, float] = {}
    finished: list[JobRecord] = []
    seen = 0
    for job in jobs:
        created = _created(job)
        if created is None:  # cannot be placed in time: never reported
            continue
        if created < stop_before:
            break
        seen += 1
        if created > horizon:
            horizon, at_horizon = created, {job.job_id}
        elif created == horizon:
            at_horizon.add(job.job_id)
        if not matches(job):
            continue
        if cursor is not None and cursor.knows(job.job_id, created) and job.job_id not in cursor.open:
            continue  # finished when an earlier tick saw it: reported then
        if job.status.is_terminal:
            finished.append(job)
        else:
            still_open[job.job_id] = created
    return TickResult(list(reversed(finished)), JobsCursor(horizon, at_horizon, still_open), seen)


def build_sutro_jobs_sensor(
    *,
    asset_key: dg.AssetKey | str | list[str] | AssetKeyFor | None = None,
    name: str = "sutro_jobs_sensor",
    job_name_prefix: str | None = None,
    function: str | None = None,
    statuses: Collection[str] = DEFAULT_STATUSES,
    include_package_jobs: bool = False,
    asset_selection: dg.AssetSelection | list[Any] | None = None,
    resource_key: str = DEFAULT_RESOURCE_KEY,
    minimum_interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS,
    initial_lookback_seconds: float = DEFAULT_INITIAL_LOOKBACK_SECONDS,
    page_size: int = 100,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: str | None = None,
) -> dg.SensorDefinition:
    """A sensor reporting Sutro jobs finished outside Dagster, each exactly once.

    Args:
        asset_key: the asset each finished job is observed for: a key, or a function
            of the :class:`~sutro_providers.client.models.JobRecord` returning a key
            (``None``: not observed). Default ``None``: no observations (give
            ``asset_selection`` then).
        name: the sensor's name. Default ``"sutro_jobs_sensor"``.
        job_name_prefix: only jobs whose name starts with this. Default ``None``: any name.
        function: only jobs of this Function (the job's ``model``). Default ``None``: any.
        statuses: which final statuses are reported. Default succeeded, failed and
            cancelled (a failed job's observation carries ``sutro/failure_reason``).
        include_package_jobs: also report the jobs of this package's own Airflow tasks
            and Dagster assets. Default ``False``.
        asset_selection: when given, a run of these assets is requested for each
            SUCCEEDED job (``run_key`` = the job id, tags ``sutro/job_id`` and
            ``sutro/job_name``). Default ``None``: observations only.
        resource_key: the key of the :class:`~dagster_sutro.SutroResource`. Default ``"sutro"``.
        minimum_interval_seconds: between two ticks. Default 60.
        initial_lookback_seconds: how far back the first tick (no cursor) looks, by
            job creation time. Default 3600.
        page_size: jobs per ``list-jobs`` page. Default 100.
        default_status: default ``STOPPED`` (turn it on in the UI or set ``RUNNING``).

    Each observation's metadata is :func:`dagster_sutro.metadata.job_metadata`:
    ``sutro/job_id``, ``sutro/job_name``, ``sutro/state``, ``sutro/function``,
    rows, tokens, ``sutro/cost_usd``, the ``sutro.{model}.*_tokens`` usage keys,
    ``sutro/completed_at`` and a ``sutro/job`` link; never the API key.
    """
    if asset_key is None and asset_selection is None:
        raise dg.DagsterInvalidDefinitionError("build_sutro_jobs_sensor needs asset_key, asset_selection or both")
    wanted = {JobStatus.parse(s) for s in statuses}
    not_final = sorted(s.value for s in wanted if not s.is_terminal)
    if not_final:
        raise dg.DagsterInvalidDefinitionError(f"statuses must be final job statuses, not {not_final}")
    key_for = _key_function(asset_key)

    def matches(job: JobRecord) -> bool:
        if job_name_prefix is not None and not (job.name or "").startswith(job_name_prefix):
            return False
        if function is not None and job.model != function:
            return False
        return include_package_jobs or not is_package_job_name(job.name)

    @dg.sensor(
        name=name,
        description=description or ("Sutro jobs finished outside Dagster"
                                     + (f", named {job_name_prefix}*" if job_name_prefix else "")),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        required_resource_keys={resource_key},
        asset_selection=asset_selection,
    )
    def _sutro_jobs_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        resource = getattr(context.resources, resource_key)
        try:
            cursor = JobsCursor.parse(context.cursor)
        except (ValueError, KeyError, TypeError) as exc:
            context.log.warning(f"could not read the cursor ({exc}); starting over from the lookback")
            cursor = None
        client: SutroClient
        with resource.get_client() as client:
            tick = scan_jobs(client.iter_jobs(page_size=page_size), cursor, now=time.time(),
                             initial_lookback_seconds=initial_lookback_seconds, matches=matches)
        origin = resource.client_config().origin
        events: list[dg.AssetObservation] = []
        runs: list[dg.RunRequest] = []
        for job in tick.finished:
            if job.status not in wanted:
                continue
            key = key_for(job) if key_for is not None else None
            if key is not None:
                events.append(dg.AssetObservation(asset_key=key, metadata=job_metadata(job, origin,
                                                                                       resource.job_url_template)))
            if asset_selection is not None and job.status is JobStatus.SUCCEEDED:
                runs.append(dg.RunRequest(run_key=job.job_id,
                                          tags={"sutro/job_id": job.job_id, "sutro/job_name": job.name or ""}))
        context.log.info(f"{tick.jobs_read} job(s) read, {len(tick.finished)} finished since the last tick, "
                         f"{len(tick.cursor.open)} still running")
        return dg.SensorResult(asset_events=events, run_requests=runs, cursor=tick.cursor.dump())

    return _sutro_jobs_sensor


def _key_function(asset_key: dg.AssetKey | str | list[str] | AssetKeyFor | None,
                  ) -> Callable[[JobRecord], dg.AssetKey | None] | None:
    if asset_key is None:
        return None
    if callable(asset_key) and not isinstance(asset_key, dg.AssetKey):
        user_function = asset_key

        def key_of(job: JobRecord) -> dg.AssetKey | None:
            key = user_function(job)
            if key is None:
                return None
            return dg.AssetKey.from_user_string(key) if isinstance(key, str) else dg.AssetKey.from_coercible(key)

        return key_of
    fixed = (dg.AssetKey.from_user_string(asset_key) if isinstance(asset_key, str)
             else dg.AssetKey.from_coercible(asset_key))
    return lambda _job: fixed


__all__ = ["JobsCursor", "TickResult", "build_sutro_jobs_sensor", "scan_jobs"]
