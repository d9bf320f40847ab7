"""Every ``Example::`` block in dagster_sutro's docstrings runs (definitions only, no server)."""

import importlib
import inspect
import pkgutil
import re
import textwrap
from typing import Any

import pytest

import dagster_sutro


def _examples() -> list[Any]:
    found = []
    modules = [dagster_sutro] + [importlib.import_module(m.name) for m in
                                 pkgutil.walk_packages(dagster_sutro.__path__, "dagster_sutro.")]
    for module in modules:
        objects = [module] + [obj for _, obj in inspect.getmembers(module, lambda o: inspect.isclass(o) or inspect.isfunction(o))
                              if getattr(obj, "__module__", None) == module.__name__]
        for obj in objects:
            doc = inspect.getdoc(obj) or ""
            for n, part in enumerate(re.split(r"Example[^\n]*::\n", doc)[1:]):
                lines = part.splitlines()
                block = []
                for line in lines:
                    if line.strip() and not line.startswith("    "):
                        break
                    block.append(line)
                code = textwrap.dedent("\n".join(block)).strip()
                if code and not code.startswith("type:"):  # YAML examples are validated by dg check yaml
                    found.append(pytest.param(code, id=f"{getattr(obj, '__qualname__', module.__name__)}-{n}"))
    return found


EXAMPLES = _examples()


def test_every_public_module_has_examples() -> None:
    assert len(EXAMPLES) >= 14


@pytest.mark.parametrize("code", EXAMPLES)
def test_docstring_example_runs(code: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<docstring>", "exec"), {"__name__": "__docstring__"})  # noqa: S102 - our own docs
