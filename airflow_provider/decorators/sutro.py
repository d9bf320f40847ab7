"""``@task.sutro``: a TaskFlow function whose return value is the table a Sutro Function enriches.

The decorated function returns the rows (a list of dicts, a pandas or polars
DataFrame, an Arrow Table or RecordBatchReader) or a SQL query (a string, run on
``conn_id``; Jinja in it is rendered). The task then runs exactly what
:class:`~airflow_provider.operators.batch.SutroBatchFunctionOperator` runs with that
input: the same validation, ledger, deferral, outputs, XCom keys and asset events;
every operator argument but ``input_uri``/``input_data``/``sql`` is a decorator
argument. The return value (XCom) is the run manifest, never the rows::

    @task.sutro(function_name="ticket-triage", output_uri="s3://b/triaged/{{ run_id }}.parquet")
    def tickets(day: str) -> list[dict]:
        return load_tickets(day)

    @task.sutro(function_name="ticket-triage", conn_id="warehouse")
    def tickets_sql(day: str) -> str:
        return f"SELECT id, subject, body FROM support_tickets WHERE day = '{day}'"

**Mapping.** ``tickets.expand(day=[...])`` runs one enrichment per map index: the run
identity is ``dag_id``, ``task_id``, ``run_id`` and ``map_index``, so each map index
has its own ledger and jobs, and a retry of one map index reattaches to that map
index's jobs only. Give each mapped run its own ``output_uri`` (e.g. with
``{{ ti.map_index }}``): map indexes writing one file would overwrite each other.

**Retries.** A retry (or a deferral resumed without its trigger event) calls the
function again: it must return the same rows, or the run fails as an input change
(``on_input_change``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    DecoratedOperator,
    TaskDecorator,
    context_merge,
    determine_kwargs,
    task_decorator_factory,
)
from airflow.sdk.definitions._internal.types import SET_DURING_EXECUTION

from airflow_provider.operators.batch import SutroBatchFunctionOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

TABLE_TYPES = "a list of row dicts, a pandas or polars DataFrame, an Arrow Table or RecordBatchReader"


def _is_table(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(row, dict) for row in value)
    import pyarrow as pa

    if isinstance(value, pa.Table | pa.RecordBatch | pa.RecordBatchReader):
        return True
    module = type(value).__module__.split(".")[0]
    return module in {"pandas", "polars"} and type(value).__name__ in {"DataFrame", "LazyFrame"}


class SutroDecoratedOperator(DecoratedOperator, SutroBatchFunctionOperator):  # type: ignore[misc]
    """The operator behind ``@task.sutro``: runs the callable, then the batch operator
    on what it returned (see the module docstring).

    :param python_callable: the decorated function.
    :param op_args: positional arguments of the function (templated).
    :param op_kwargs: keyword arguments of the function (templated).
    """

    template_fields: Sequence[str] = (
        *DecoratedOperator.template_fields,
        *(f for f in SutroBatchFunctionOperator.template_fields if f not in ("input_uri", "input_data", "sql")),
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        "parameters": "json",
    }
    custom_operator_name: str = "@task.sutro"
    overwrite_rtif_after_execution: bool = True

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for name in ("input_uri", "input_data", "sql"):
            if kwargs.get(name) is not None:
                raise ValueError(f"@task.sutro takes its input from the function's return value, not {name}=")
        super().__init__(
            python_callable=python_callable, op_args=op_args, op_kwargs=op_kwargs,
            input_data=SET_DURING_EXECUTION, **kwargs,
        )
        self._rows: Any = None

    def execute(self, context: Context) -> Any:
        self._call(context)
        return SutroBatchFunctionOperator.execute(self, context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if event is None:  # the run goes back through its submit step, which reads the input again
            self._call(context)
        return SutroBatchFunctionOperator.execute_complete(self, context, event)

    def _call(self, context: Context) -> None:
        """Run the function; a string becomes the ``sql`` on ``conn_id``, a table the input rows."""
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        returned = self.python_callable(*self.op_args, **kwargs)
        self.input_data = None
        if isinstance(returned, str):
            if not returned.strip():
                raise TypeError("the @task.sutro function returned an empty SQL query")
            if not self.conn_id:
                raise TypeError("the @task.sutro function returned a SQL query but the task has no conn_id "
                                "(the database connection to run it on)")
            self.sql, self._rows = self.render_template(returned, context), None
            return
        if not _is_table(returned):
            raise TypeError(f"the @task.sutro function must return {TABLE_TYPES}, or a SQL query string; "
                            f"got {type(returned).__name__}")
        self.sql, self._rows = None, returned

    def source(self) -> Any:
        if self._rows is not None:
            return self._rows
        return super().source()


def sutro_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """``@task.sutro``: wrap a function returning rows or a SQL query into a
    :class:`SutroDecoratedOperator` (registered under ``task-decorators``)."""
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=False,  # the return value is the run manifest, one XCom
        decorated_operator_class=SutroDecoratedOperator,
        **kwargs,
    )


__all__ = ["SutroDecoratedOperator", "sutro_task"]
