"""The bad-input catalogue (one test per row of the table in docs/reliability.md).

Each case asserts the error's type and that its message names what is wrong; when
the input is at fault, that no job was created (``admin.job_count()`` unchanged);
and in every case that nothing was written at ``output_uri``.
"""

from __future__ import annotations

import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from sutro_providers import SutroClient
from sutro_providers.client.config import RetryPolicy
from sutro_providers.errors import (
    SutroAuthenticationError,
    SutroConfigurationError,
    SutroConnectionError,
    SutroCostLimitError,
    SutroInputError,
    SutroJobCancelledError,
    SutroJobFailedError,
    SutroJobTimeoutError,
    SutroLedgerConflictError,
    SutroNotFoundError,
    SutroQuotaExceededError,
    SutroResultsError,
    SutroResultsNotReadyError,
    SutroServerError,
    SutroStagingError,
    SutroValidationError,
)
from sutro_providers.function_spec import InputField
from sutro_providers.identity import RunIdentity
from sutro_providers.options import StagingLocation
from sutro_providers.pipeline import EnrichmentPipeline
from tests.pipeline.conftest import options, tickets
from tests.reliability.loopback import ArtifactHost, ResultsProxy, expired_presign_host, html_site

ROWS = [{k: r[k] for k in ("subject", "body", "customer_tier")} for r in tickets(12)]
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_attempts=3)


def ident(case: str) -> RunIdentity:
    return RunIdentity.of("bad-input", case=case)


def run(pipeline: EnrichmentPipeline, source: Any, out: Any, case: str, **kw: Any) -> Any:
    return pipeline.run(source, ident(case), options(**out.options(), **kw))


def other_pipeline(pipeline: EnrichmentPipeline, api_url: str, api_key: str = "sk_wrong") -> EnrichmentPipeline:
    return EnrichmentPipeline(SutroClient(api_url, api_key, retry=FAST), pipeline.area.location)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------- the table itself
def test_missing_required_column(pipeline: Any, out: Any, no_new_job: Any) -> None:
    with no_new_job(), pytest.raises(SutroInputError, match="needs input column 'body'.*it has: 'subject'"):
        run(pipeline, [{"subject": r["subject"]} for r in ROWS], out, "missing-col")


def test_null_in_required_field(pipeline: Any, out: Any, no_new_job: Any) -> None:
    rows = [dict(r) for r in ROWS]
    rows[3]["body"] = None
    with no_new_job(), pytest.raises(SutroInputError, match=r"column 'body': null in a required field at row 3\b"):
        run(pipeline, rows, out, "null-required")


def test_wrong_column_type(pipeline: Any, out: Any, no_new_job: Any) -> None:
    table = pa.table({"subject": pa.array([["a"], ["b"]]), "body": ["x", "y"]})
    with no_new_job(), pytest.raises(SutroInputError, match=r"column 'subject' has type list<item: string>.*declares 'subject' as string"):
        run(pipeline, table, out, "wrong-type")


def test_mixed_value_types(pipeline: Any, out: Any, no_new_job: Any) -> None:
    rows = [{"subject": "a", "body": "b"}, {"subject": 7, "body": "b"}, {"subject": ["c"], "body": "b"}]
    with no_new_job(), pytest.raises(SutroInputError, match=r"column 'subject' mixes types: row 2 holds \['c'\] \(list\)"):
        run(pipeline, rows, out, "mixed-types")


def test_text_for_integer_field(pipeline: Any, out: Any, no_new_job: Any) -> None:
    rows = [{"message": "hi", "employees": 40}, {"message": "yo", "employees": "40"}]
    with no_new_job(), pytest.raises(SutroInputError, match=r"column 'employees' has type string.*declares 'employees' as "
                                                            r"integer.*text is never converted into a number"):
        run(pipeline, rows, out, "text-for-int", function="lead-extractor")


def test_boolean_field_given_text(pipeline: Any, out: Any, no_new_job: Any) -> None:
    fields = [InputField(name="subject", type="string"), InputField(name="urgent", type="boolean")]
    with no_new_job(), pytest.raises(SutroInputError, match=r"column 'urgent' has type string.*declares 'urgent' as boolean"):
        run(pipeline, [{"subject": "a", "urgent": "yes"}], out, "bool-text", input_fields=fields)


def test_fraction_in_integer_field(pipeline: Any, out: Any, no_new_job: Any) -> None:
    rows = [{"message": "hi", "employees": 10.0}, {"message": "yo", "employees": 12.5}]
    with no_new_job(), pytest.raises(SutroInputError, match=r"column 'employees': not a whole number at row 1\b"):
        run(pipeline, rows, out, "fraction", function="lead-extractor")


def test_empty_table_submits_nothing(pipeline: Any, out: Any, no_new_job: Any) -> None:
    empty = pa.table({"subject": pa.array([], pa.string()), "body": pa.array([], pa.string())})
    with no_new_job():
        result = run(pipeline, empty, out, "empty")
    assert result.manifest.state == "noop" and result.manifest.message == "empty input: nothing submitted"
    assert result.table is not None and result.table.num_rows == 0
    assert result.table.column_names == ["subject", "body", "label", "confidence", "rationale", "sutro_skip_reason"]


def test_empty_table_missing_required_column(pipeline: Any, out: Any, no_new_job: Any) -> None:
    empty = pa.table({"subject": pa.array([], pa.string())})
    with no_new_job(), pytest.raises(SutroInputError, match="needs input column 'body'.*it has: 'subject'"):
        run(pipeline, empty, out, "empty-missing-col")


def test_unknown_function(pipeline: Any, out: Any, no_new_job: Any) -> None:
    with no_new_job(), pytest.raises(SutroInputError, match="Function 'no-such-fn' does not publish its input fields"):
        run(pipeline, ROWS, out, "unknown-fn", function="no-such-fn")


def test_unknown_function_with_declared_fields(pipeline: Any, out: Any, no_new_job: Any) -> None:
    fields = [InputField(name="subject", type="string")]
    with no_new_job(), pytest.raises(SutroNotFoundError, match="model 'no-such-fn' is neither a known model nor a published Function"):
        run(pipeline, ROWS, out, "unknown-fn-fields", function="no-such-fn", input_fields=fields)


def test_wrong_api_key(pipeline: Any, sutro_clean: Any, out: Any, no_new_job: Any) -> None:
    with no_new_job(), pytest.raises(SutroAuthenticationError, match="HTTP 401: Missing or invalid API key"):
        run(other_pipeline(pipeline, sutro_clean.url, "sk_not_the_key"), ROWS, out, "bad-key")


def test_missing_api_key(monkeypatch: pytest.MonkeyPatch, sutro_clean: Any) -> None:
    monkeypatch.delenv("SUTRO_API_KEY", raising=False)
    with pytest.raises(SutroConfigurationError, match="no Sutro API key: pass api_key or set SUTRO_API_KEY"):
        SutroClient(sutro_clean.url)


def test_unreachable_api_url(pipeline: Any, out: Any, no_new_job: Any) -> None:
    port = closed_port()
    with no_new_job(), pytest.raises(SutroConnectionError, match=rf"ConnectError.*127\.0\.0\.1:{port}"):
        run(other_pipeline(pipeline, f"http://127.0.0.1:{port}"), ROWS, out, "unreachable")


@pytest.mark.parametrize(("url", "why"), [
    ("not a url", "absolute http"), ("ftp://h.example", "absolute http"), ("http://api.example.com", "must use https"),
    ("https://h.example/v1?debug=1", "query string"), ("https://u:p@h.example", "credentials"),
    ("https://h.example/v2", "origin or end at its /v1"), ("", "empty|no Sutro API URL"),
])
def test_malformed_api_url(url: str, why: str) -> None:
    with pytest.raises(SutroConfigurationError, match=why):
        SutroClient(url, "sk_x")


def test_retired_api_host() -> None:
    with pytest.raises(SutroConfigurationError, match="no longer supported"):
        SutroClient("https://api.sutro.sh", "sk_x")


def test_oversize_row(pipeline: Any, out: Any, no_new_job: Any) -> None:
    rows = [dict(r) for r in ROWS]
    rows[5]["body"] = "x" * 500
    with no_new_job(), pytest.raises(SutroInputError, match=r"longer than max_row_chars=300 at row 5 \(\d+ characters, 500 in column 'body'\)"):
        run(pipeline, rows, out, "oversize", max_row_chars=300)


def test_non_utf8_csv(pipeline: Any, out: Any, no_new_job: Any, tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_bytes(b"subject,body\nRefund,ok\nCaf\xe9,charged twice\n")
    with no_new_job(), pytest.raises(SutroInputError, match="UTF-8"):
        run(pipeline, str(path), out, "latin1")


def test_binary_column(pipeline: Any, out: Any, no_new_job: Any) -> None:
    table = pa.table({"subject": pa.array([b"\xff\xfe"], pa.binary()), "body": ["x"]})
    with no_new_job(), pytest.raises(SutroInputError, match="column 'subject' has type binary"):
        run(pipeline, table, out, "binary")


def test_duplicate_row_ids(pipeline: Any, out: Any, no_new_job: Any) -> None:
    rows = [dict(r, ticket_id=f"T{i % 10}") for i, r in enumerate(ROWS)]
    with no_new_job(), pytest.raises(SutroInputError, match=r"id_column 'ticket_id' has duplicate values: 'T0' \(rows 0, 10\)"):
        run(pipeline, rows, out, "dup-ids", id_column="ticket_id")


def test_null_row_ids(pipeline: Any, out: Any, no_new_job: Any) -> None:
    rows = [dict(r, ticket_id=None if i == 4 else f"T{i}") for i, r in enumerate(ROWS)]
    with no_new_job(), pytest.raises(SutroInputError, match="id_column 'ticket_id' is null at rows 4"):
        run(pipeline, rows, out, "null-ids", id_column="ticket_id")


def test_id_column_missing(pipeline: Any, out: Any, no_new_job: Any) -> None:
    with no_new_job(), pytest.raises(SutroInputError, match="id_column 'ticket_id' is not a column of the table"):
        run(pipeline, ROWS, out, "no-id-col", id_column="ticket_id")


def test_reserved_column(pipeline: Any, out: Any, no_new_job: Any) -> None:
    rows = [dict(r, __sutro_row_id=1) for r in ROWS]
    with no_new_job(), pytest.raises(SutroInputError, match="column '__sutro_row_id' is reserved"):
        run(pipeline, rows, out, "reserved")


def test_result_column_clash(pipeline: Any, out: Any, no_new_job: Any) -> None:
    with no_new_job(), pytest.raises(SutroInputError, match=r"\['label'\].*set output_prefix"):
        run(pipeline, [dict(r, label="x") for r in ROWS], out, "clash")


def test_duplicate_column_names(pipeline: Any, out: Any, no_new_job: Any) -> None:
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"]), pa.array(["c"])], names=["subject", "body", "body"])
    with no_new_job(), pytest.raises(SutroInputError, match=r"duplicate column names: \['body'\]"):
        run(pipeline, table, out, "dup-cols")


def test_input_file_missing(pipeline: Any, out: Any, no_new_job: Any, tmp_path: Path) -> None:
    with no_new_job(), pytest.raises(SutroInputError, match="input file .*nope.parquet' does not exist"):
        run(pipeline, str(tmp_path / "nope.parquet"), out, "no-file")


def test_unknown_file_type(pipeline: Any, out: Any, no_new_job: Any, tmp_path: Path) -> None:
    (tmp_path / "rows.txt").write_text("subject,body\n")
    with no_new_job(), pytest.raises(SutroInputError, match="cannot tell the format .*name it .csv or .parquet"):
        run(pipeline, str(tmp_path / "rows.txt"), out, "txt")


def test_description_over_limit() -> None:
    with pytest.raises(ValidationError, match="description\n.*at most 512 characters"):
        options(description="d" * 513)


def test_job_name_over_limit(client: SutroClient, sutro_clean: Any) -> None:
    with pytest.raises(SutroValidationError, match="name: String should have at most 45 characters"):
        client.create_job(model="ticket-triage", inputs=[{"subject": "a", "body": "b"}], name="n" * 46)
    assert sutro_clean.admin.stats()["requests"].get("batch-inference", 0) == 0  # refused before sending


@pytest.mark.parametrize("priority", [2, -1])
def test_invalid_priority(priority: int) -> None:
    with pytest.raises(ValidationError, match="job_priority"):
        options(job_priority=priority)


def test_bad_sampling_params(pipeline: Any, out: Any, no_new_job: Any) -> None:
    with no_new_job(), pytest.raises(SutroValidationError, match=r"sampling_params\['temperature'\] must be a number or boolean"):
        run(pipeline, ROWS, out, "sampling", sampling_params={"temperature": "hot"})


def test_staging_bucket_missing(client: SutroClient, sutro_s3_server: Any, out: Any, no_new_job: Any) -> None:
    area = StagingLocation(url="s3://no-such-bucket-xyz/sutro", storage_options=sutro_s3_server.storage_options)
    with no_new_job(), pytest.raises(SutroStagingError, match="cannot write to staging location s3://no-such-bucket-xyz/sutro"):
        run(EnrichmentPipeline(client, area), ROWS, out, "no-bucket")


def test_staging_endpoint_down(client: SutroClient, out: Any, no_new_job: Any) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    area = StagingLocation(url="s3://tickets/sutro", storage_options={
        "key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": endpoint},
        "config_kwargs": {"retries": {"max_attempts": 1}}})
    with no_new_job(), pytest.raises(SutroStagingError, match=r"cannot read the run ledger tickets/sutro/runs/.*"
                                                              r"EndpointConnectionError: Could not connect"):
        run(EnrichmentPipeline(client, area), ROWS, out, "endpoint-down")


def test_staging_not_writable(client: SutroClient, out: Any, no_new_job: Any, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    area = StagingLocation(url=f"file://{tmp_path}/a-file/sutro")
    with no_new_job(), pytest.raises(SutroStagingError, match="cannot read the run ledger .*a-file/sutro.*NotADirectoryError"):
        run(EnrichmentPipeline(client, area), ROWS, out, "not-writable")


def test_staging_cannot_be_signed(client: SutroClient, out: Any, no_new_job: Any, tmp_path: Path) -> None:
    area = StagingLocation(url=f"file://{tmp_path}", storage_options={"auto_mkdir": True})
    with no_new_job(), pytest.raises(SutroStagingError, match="cannot be pre-signed; use s3://"):
        run(EnrichmentPipeline(client, area), ROWS, out, "unsignable")


def test_expired_signed_url(pipeline: Any, out: Any, no_new_job: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with expired_presign_host() as host:  # S3's answer to a URL past X-Amz-Expires
        monkeypatch.setattr(type(pipeline.area), "sign", lambda self, path: f"{host.url}/staging/input.parquet?X-Amz-Expires=60")
        with no_new_job(), pytest.raises(SutroValidationError, match=r"could not download inputs from .*HTTP 403.*input_download_failed"):
            run(pipeline, ROWS, out, "expired-url")
    assert host.seen and not host.authorized()


def test_cancelled_job(pipeline: Any, sutro_clean: Any, out: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    with ThreadPoolExecutor(1) as pool:  # cancelled by someone else while the run waits
        waiting = pool.submit(run, pipeline, ROWS, out, "cancelled")
        while not (cancelled := pipeline.cancel(ident("cancelled"))):
            time.sleep(0.1)
        with pytest.raises(SutroJobCancelledError, match=f"Sutro job {cancelled[0]} was cancelled"):
            waiting.result(timeout=60)
    assert not out.exists() and sutro_clean.admin.job_count() == 1


def test_failed_job(pipeline: Any, sutro_clean: Any, out: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "fail_job", "count": 1, "message": "GPU node lost"}])
    with pytest.raises(SutroJobFailedError, match="FAILED: GPU node lost"):
        run(pipeline, ROWS, out, "failed")
    assert not out.exists() and sutro_clean.admin.stats()["jobs"]["by_status"] == {"FAILED": 1}


def test_job_timeout_cancels(pipeline: Any, sutro_clean: Any, out: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    with pytest.raises(SutroJobTimeoutError, match="not finished before the timeout; cancelled"):
        run(pipeline, ROWS, out, "timeout", timeout=1.0)
    assert not out.exists() and sutro_clean.admin.stats()["jobs"]["by_status"] in ({"CANCELLED": 1}, {"CANCELLING": 1})


def test_results_never_ready(pipeline: Any, sutro_clean: Any, out: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "results_not_ready", "endpoint": "results-url"},
                                  {"kind": "results_not_ready", "endpoint": "job-results"}])
    with pytest.raises(SutroResultsNotReadyError, match="are not ready yet"):
        run(pipeline, ROWS, out, "not-ready")
    assert not out.exists() and sutro_clean.admin.job_count() == 1


def test_changed_input_on_retry(pipeline: Any, sutro_clean: Any, out: Any) -> None:
    sutro_clean.admin.set_faults([{"kind": "hold_job", "count": 1}])
    pipeline.submit(ROWS, ident("changed"), options(**out.options()))
    with pytest.raises(SutroLedgerConflictError, match="changed since its earlier attempt.*on_input_change='resubmit'"):
        run(pipeline, [dict(r, body="edited") for r in ROWS], out, "changed")
    assert sutro_clean.admin.job_count() == 1 and not out.exists()


@pytest.mark.parametrize(("limit", "shown"), [(0.0, "0.00"), (1e-7, "0.0000001")])
def test_cost_limit(pipeline: Any, out: Any, client: SutroClient, limit: float, shown: str) -> None:
    with pytest.raises(SutroCostLimitError, match=rf"estimated cost 0\.0*[1-9]\d{{3}} USD is above "
                                                  rf"max_cost_usd={re.escape(shown)}; nothing was submitted"):
        run(pipeline, ROWS, out, f"cost-{limit}", max_cost_usd=limit)
    assert {j.run_type for j in client.list_jobs().jobs} == {"COST_ESTIMATE"} and not out.exists()


def test_html_instead_of_json(pipeline: Any, out: Any, no_new_job: Any) -> None:
    with html_site() as site, no_new_job(), pytest.raises(SutroServerError, match=r"non-JSON body \(text/html\); is the API URL right\?"):
        run(other_pipeline(pipeline, site.url), ROWS, out, "html")


def test_truncated_results_download(pipeline: Any, sutro_clean: Any, out: Any) -> None:
    with ArtifactHost("truncate") as host, ResultsProxy(sutro_clean.url, host.url) as proxy:
        cut = other_pipeline(pipeline, proxy.url, sutro_clean.api_key)
        with pytest.raises(SutroConnectionError, match=r"results download of .* closed at \d+ of \d+ bytes"):
            run(cut, ROWS, out, "truncated")
    assert not out.exists()
    result = run(pipeline, ROWS, out, "truncated")  # the orchestrator's retry: same job, full rows
    assert result.manifest.rows_out == len(ROWS) and sutro_clean.admin.job_count() == 1 and out.exists()


@pytest.fixture(scope="module")
def special_server(sutro_functions_dir: Path) -> Any:
    """Start a local server with extra flags (module scope: one process per flag set)."""
    from sutro_providers.local.server import LocalSutroServer

    servers: dict[str, LocalSutroServer] = {}

    def get(*flags: str) -> LocalSutroServer:
        if " ".join(flags) not in servers:
            servers[" ".join(flags)] = LocalSutroServer(sutro_functions_dir, extra_args=list(flags)).start()
        return servers[" ".join(flags)]

    yield get
    for server in servers.values():
        server.stop()


def test_results_schema_mismatch(pipeline: Any, out: Any, special_server: Any) -> None:
    server = special_server("--engine", "tests.reliability.engines:off_label")
    with pytest.raises(SutroResultsError, match=r"label.*'spam'"):
        run(other_pipeline(pipeline, server.url, server.api_key), ROWS, out, "off-label")
    assert not out.exists()


def test_quota_exceeded(pipeline: Any, out: Any, special_server: Any) -> None:
    server = special_server("--enforce-quotas", "--row-quota-p0", "10")
    server.admin.set_faults([{"kind": "status", "endpoint": "get-quotas", "status": 404}])  # quotas not published
    before = server.admin.job_count()
    with pytest.raises(SutroQuotaExceededError, match="12 rows exceed the priority 0 row quota of 10"):
        run(other_pipeline(pipeline, server.url, server.api_key), ROWS, out, "quota", job_priority=0)
    assert server.admin.job_count() == before and not out.exists()
    server.admin.clear_faults()  # published quotas: the retry of the SAME run re-plans its shards
    result = run(other_pipeline(pipeline, server.url, server.api_key), ROWS, out, "quota", job_priority=0)
    assert result.manifest.rows_out == len(ROWS) and len(result.manifest.job_ids) == 2
    assert server.admin.job_count() == before + 2
