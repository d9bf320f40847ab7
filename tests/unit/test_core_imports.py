"""The shipped core imports no orchestrator, no server and no test tooling.

Every module of ``sutro_providers`` except the local server package
(``sutro_providers.local``, imported only on purpose: ``sutro-local``, the opt-in
pytest plugin) is imported in a fresh interpreter; none of the modules below may
end up in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("airflow", "dagster", "fastapi", "uvicorn", "moto", "pytest")

_PROBE = """
import importlib, json, pkgutil, sys
import sutro_providers
names = []
for info in pkgutil.walk_packages(sutro_providers.__path__, "sutro_providers."):
    if info.name == "sutro_providers.local" or info.name.startswith("sutro_providers.local."):
        continue
    importlib.import_module(info.name)
    names.append(info.name)
for name in sutro_providers.__all__:
    getattr(sutro_providers, name)
forbidden = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"modules": names, "forbidden": forbidden}))
"""


def _probe() -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(FORBIDDEN)],
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_core_imports_no_orchestrator_server_or_test_tooling() -> None:
    seen = _probe()
    assert len(seen["modules"]) > 20, seen["modules"]  # really walked the package
    assert "sutro_providers.pipeline" in seen["modules"]
    assert seen["forbidden"] == [], f"the core pulled in {seen['forbidden']}"


def test_the_local_server_is_where_the_server_stack_lives() -> None:
    # the probe's counterpart: importing the local app on purpose does load FastAPI
    code = "import sys, sutro_providers.local.app; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "True"
