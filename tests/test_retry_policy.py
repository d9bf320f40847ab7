"""One answer to "is this core error worth a retry of the task or run": the core's
``worth_retrying``, read by both adapters. Every core error class (every
``SutroError`` subclass of the shipped core) gets the same answer from Airflow (an
``AirflowFailException`` or not) and from Dagster (``dg.Failure.allow_retries``)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import sutro_providers
from airflow_provider.exceptions import AIRFLOW_EXCEPTIONS, airflow_exception, retryable
from dagster_sutro.execution import failure
from sutro_providers import errors
from sutro_providers.errors import (
    SutroAuthenticationError,
    SutroConfigurationError,
    SutroCostLimitError,
    SutroDestinationError,
    SutroDestinationSchemaError,
    SutroError,
    SutroInputError,
    SutroJobFailedError,
    SutroLedgerConflictError,
    SutroNotFoundError,
    SutroQuotaExceededError,
    SutroResultsError,
    SutroResultsIncompleteError,
    SutroRowsFailedError,
    SutroServerError,
    SutroStagingError,
    SutroValidationError,
    worth_retrying,
)


def core_error_classes() -> list[type[SutroError]]:
    """``SutroError`` and its subclasses, once every module of the core (the local
    server, dev tooling, apart) is imported."""
    packages = [(sutro_providers.__path__, "sutro_providers.")]
    while packages:
        path, prefix = packages.pop()
        for module in pkgutil.iter_modules(path, prefix):
            if module.name == "sutro_providers.local":
                continue
            imported = importlib.import_module(module.name)
            if module.ispkg:
                packages.append((imported.__path__, module.name + "."))
    found: list[type[SutroError]] = []
    todo: list[type[SutroError]] = [SutroError]
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.append(cls)
            todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__qualname__)


CLASSES = core_error_classes()

# written out here, not read from the table: breaking WORTH_RETRYING must fail this test
EXPECTED: dict[type[SutroError], bool] = {
    SutroInputError: False, SutroValidationError: False, SutroQuotaExceededError: False,
    SutroCostLimitError: False, SutroConfigurationError: False, SutroNotFoundError: False,
    SutroAuthenticationError: False, SutroLedgerConflictError: False, SutroDestinationSchemaError: False,
    SutroResultsError: False,
    SutroResultsIncompleteError: True, SutroJobFailedError: True, SutroServerError: True, SutroStagingError: True,
    SutroDestinationError: True, SutroRowsFailedError: True, SutroError: True,
}


def test_the_walk_finds_the_classes_defined_outside_errors_py() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"LedgerWriteConflict", "RecordReplaced"} <= names
    in_errors_py = {v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, SutroError)}
    assert in_errors_py <= set(CLASSES) and len(in_errors_py) >= 25


@pytest.mark.parametrize(("cls", "retry"), list(EXPECTED.items()), ids=lambda v: getattr(v, "__name__", str(v)))
def test_the_core_answer(cls: type[SutroError], retry: bool) -> None:
    assert worth_retrying(cls) is retry and worth_retrying(cls("why")) is retry


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_both_adapters_give_the_core_answer(cls: type[SutroError]) -> None:
    error = cls("why")
    answer = worth_retrying(error)
    assert retryable(airflow_exception(error)) is answer, "Airflow"
    assert failure(error).allow_retries is answer, "Dagster"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_airflow_names_each_kind_it_lists(cls: type[SutroError]) -> None:
    """An error of a kind AIRFLOW_EXCEPTIONS lists gets that exception (the table agrees
    with the core, so no entry is overruled by it)."""
    named = next((AIRFLOW_EXCEPTIONS[c] for c in cls.__mro__ if c in AIRFLOW_EXCEPTIONS), None)
    if named is not None:
        assert type(airflow_exception(cls("why"))) is named
