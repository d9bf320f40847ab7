"""The exception hierarchy of ``sutro_providers``.

Every error raised by the client, the pipeline or the orchestrator adapters is a
:class:`SutroError`. HTTP errors carry the endpoint, the HTTP status and the
server's ``detail``/``code``/``request_id``; none ever carries the API key or a
pre-signed URL (messages are scrubbed before they are built).

Which errors are worth a retry is decided here, once for each kind of retry:
:func:`is_transient` for a retry of one request (the client's reads), and
:func:`worth_retrying` (the :data:`WORTH_RETRYING` table) for a retry of the whole
run (an Airflow task retry, a Dagster step retry): both adapters read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class SutroError(Exception):
    """Base class. ``str(err)`` is safe to log: it never holds a secret."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status_code: int | None = None,
        detail: Any = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status_code = status_code
        self.detail = detail
        self.code = code
        self.request_id = request_id

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes (Airflow, Dagster)
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[SutroError], message: str, state: dict[str, Any]) -> SutroError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class SutroConfigurationError(SutroError):
    """The API URL or key is missing or malformed, or the host is a retired one."""


class SutroAuthenticationError(SutroError):
    """HTTP 401/403: the API key is missing, wrong, or not for this deployment."""


class SutroNotFoundError(SutroError):
    """HTTP 404: unknown job, Function or route."""


class SutroValidationError(SutroError):
    """The request or the input rows are invalid (HTTP 400/422, or caught client-side
    before anything was sent). Fix the input; retrying will not help."""


class SutroQuotaExceededError(SutroValidationError):
    """The job is larger than the deployment's row or token quota."""


class SutroRateLimitError(SutroError):
    """HTTP 429. ``retry_after`` is the server's Retry-After in seconds, if it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class SutroServerError(SutroError):
    """HTTP 5xx (including Cloudflare's 524 origin timeout) or a reply that is not JSON."""


class SutroConnectionError(SutroError):
    """The server could not be reached or dropped the connection."""


class SutroResultsNotReadyError(SutroError):
    """HTTP 409 ``results_not_ready``: the job succeeded but its results are not written yet."""


class SutroSubmissionOutcomeUnknownError(SutroError):
    """Job creation may or may not have happened (a 5xx/524 or a dropped connection
    after the request was sent). Job creation is never retried blindly: reconcile by
    the job's name through ``list-jobs`` before submitting again (the pipeline does)."""

    def __init__(self, message: str, *, job_name: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.job_name = job_name


class SutroJobError(SutroError):
    """A job ended without results. ``job_id`` names it (comma-separated when several
    jobs are concerned); ``job_ids`` lists them and ``statuses`` holds each job's last
    status (``{job_id: "FAILED", ...}``) when the error comes from a wait."""

    def __init__(self, message: str, *, job_id: str | None = None, job_ids: Sequence[str] | None = None,
                 statuses: Mapping[str, str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.job_ids = list(job_ids) if job_ids is not None else [j.strip() for j in (job_id or "").split(",") if j.strip()]
        self.job_id = job_id if job_id is not None else (", ".join(self.job_ids) or None)
        self.statuses = dict(statuses or {})


class SutroJobFailedError(SutroJobError):
    """The job reached FAILED; ``detail`` holds the server's failure reason."""


class SutroJobCancelledError(SutroJobError):
    """The job was cancelled (by a user, on a timeout, or on task/run termination)."""


class SutroJobTimeoutError(SutroJobError):
    """Waiting for the job exceeded the configured timeout."""


class SutroJobPollError(SutroJobError):
    """Polling gave up: too many failed polls in a row, or an API error that is not
    transient. The jobs were left running: a retry reattaches to them."""


class SutroResultsError(SutroError):
    """The results do not account for every submitted row exactly once, do not match
    the Function's output schema, or the download was truncated. Nothing is written."""


class SutroResultsIncompleteError(SutroResultsError):
    """A results download ended short of its size after its resumes. Unlike the
    other results errors (rows missing or twice, outputs off the schema, which a
    retry would find again), a retry downloads again and may succeed."""


class SutroCostLimitError(SutroError):
    """The cost estimate is above ``max_cost_usd``; nothing was submitted."""


class SutroInputError(SutroValidationError):
    """An input table is invalid: names the column, and the first rows at fault."""


class SutroStagingError(SutroError):
    """Staging the input on object storage failed (bucket missing, not writable...)."""


class SutroDestinationError(SutroError):
    """The destination table cannot take the enriched rows (missing, lacks columns,
    or the load failed); names the table and the columns. Raised by the pre-flight
    check before any job is submitted, or by a load (which then changed nothing)."""


class SutroDestinationSchemaError(SutroDestinationError):
    """The destination table is missing or lacks columns, or ``destination_columns``
    names a column the enriched table does not have: the table or the task must
    change (a retry would fail the same way)."""


class SutroLedgerConflictError(SutroError):
    """The input changed since an earlier attempt of the same run and the fingerprint
    policy is ``fail``."""


class SutroConcurrentAttemptError(SutroError):
    """Another attempt of the same run holds the claim on a shard's job creation
    (``on_concurrent_attempt="fail"``), or kept winning the ledger writes."""


class SutroRowsFailedError(SutroError):
    """Rows of a per-row run (Opper) still failed after their retries and
    ``on_row_error`` is ``fail``. ``rows`` lists ``{"row", "id", "reason"}`` (the
    first few); a retry of the run calls only the rows without a recorded answer."""

    def __init__(self, message: str, *, rows: list[dict[str, Any]] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.rows = rows or []


TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504, 524})


def is_transient(exc: BaseException) -> bool:
    """True for errors that a read may retry: rate limits, 5xx/524, dropped
    connections, and results that are not written yet."""
    if isinstance(exc, SutroRateLimitError | SutroConnectionError | SutroResultsNotReadyError):
        return True
    if isinstance(exc, SutroServerError):
        return exc.status_code is None or exc.status_code in TRANSIENT_STATUS
    return False


WORTH_RETRYING: Mapping[type[SutroError], bool] = {
    # a retry would fail the same way (after reading and validating the input again)
    SutroValidationError: False,  # bad rows or request, above quota (SutroInputError, SutroQuotaExceededError)
    SutroCostLimitError: False,
    SutroConfigurationError: False,
    SutroNotFoundError: False,  # an unknown Function or job
    SutroAuthenticationError: False,
    SutroLedgerConflictError: False,  # the input changed since the run's ledger record
    SutroDestinationSchemaError: False,
    SutroResultsError: False,  # rows missing or twice, outputs off the Function's schema
    # a retry may succeed, and reattaches to the jobs already paid for
    SutroResultsIncompleteError: True,  # a truncated download: downloaded again
    SutroJobError: True,  # failed, cancelled, timed out (submitted again), polls that gave up (reattached)
    SutroError: True,  # rate limits, 5xx, connections, staging, loads, another attempt holding the run...
}
"""Whether a retry of the whole run may succeed after each core error, looked up along
the error's class hierarchy (the most specific entry wins); see :func:`worth_retrying`."""


def worth_retrying(error: SutroError | type[SutroError]) -> bool:
    """Whether a retry of the task or run (an Airflow task retry, a Dagster step retry;
    not a retry of one request, see :func:`is_transient`) may succeed after ``error``.
    ``False`` for errors a retry would meet again: bad input, the cost limit,
    configuration, authentication, a changed input, a destination table that cannot
    take the rows, results that do not account for every row. A retry never pays
    twice: it reattaches to the run's jobs through its ledger."""
    cls = error if isinstance(error, type) else type(error)
    return next(WORTH_RETRYING[c] for c in cls.__mro__ if c in WORTH_RETRYING)


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """Replace every occurrence of each non-empty secret with ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
