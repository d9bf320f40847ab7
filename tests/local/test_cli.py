"""``sutro-local serve --help`` names the API key's environment variable, and the
README documents every fault kind with an example (its snippet test posts them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

from sutro_providers.local.faults import FaultKind

REPO = Path(__file__).resolve().parents[2]


def test_serve_help_names_the_api_key_env_var() -> None:
    cli = Path(sys.executable).parent / "sutro-local"
    out = subprocess.run([str(cli), "serve", "--help"], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "200", "PATH": ""}).stdout
    line = " ".join(out.split())  # help text is wrapped
    assert re.search(r"--api-key TEXT .*SUTRO_LOCAL_API_KEY.* \[env var: SUTRO_LOCAL_API_KEY; required\]", line), out


def test_readme_has_an_example_per_fault_kind() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Fault rules"):readme.index("## Compatibility")]
    missing = [k for k in get_args(FaultKind) if f'{{"kind": "{k}"' not in section]
    assert not missing, f"no example of fault kind(s) {missing} in the README's Fault rules"
    assert "pytest_plugins = [\"sutro_providers.local.pytest_plugin\"]" in readme
    assert "-p sutro_providers.local.pytest_plugin" in readme
