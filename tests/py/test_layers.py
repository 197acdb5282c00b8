"""The package's layers read in one direction, and what it ships is complete.

What an application imports (``import pgtenancy``, the context helpers) loads neither yoyo nor
the generator, the example app or the development tooling of :mod:`pgtenancy.testing`; a built
wheel holds every SQL source and template, and building it prints no warnings.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pgtenancy import testing
from pgtenancy.resources import sql_dir

REPO = testing.repo_root()

# Modules an application must not pull in by importing the runtime.
FORBIDDEN = ("yoyo", "jinja2", "pgtenancy.generator", "pgtenancy.testing", "pytest", "examples")


def modules_after(*imports: str) -> list[str]:
    """Every module loaded by a fresh interpreter after ``import`` of each of ``imports``."""
    code = "\n".join(
        [
            *(f"import {name}" for name in imports),
            "import json, sys",
            "print(json.dumps(list(sys.modules)))",
        ]
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd="/tmp", capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    return list(json.loads(res.stdout))


def forbidden(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


@pytest.mark.parametrize(
    "imports",
    [("pgtenancy",), ("pgtenancy.context",), ("pgtenancy.cli",), ("pgtenancy.resources",)],
    ids=lambda i: i[0],
)
def test_the_runtime_does_not_import_tooling(imports: tuple[str, ...]) -> None:
    loaded = modules_after(*imports)
    assert imports[0] in loaded
    assert forbidden(loaded) == []


def test_the_check_sees_tooling_when_it_is_imported() -> None:
    # The same check on the development tooling finds what it must (not a vacuous test).
    loaded = modules_after("pgtenancy", "pgtenancy.testing.plugin", "pgtenancy.generator")
    found = forbidden(loaded)
    assert {"pgtenancy.testing", "pgtenancy.testing.cluster", "pytest"} <= set(found)
    assert "pgtenancy.generator" in found and "jinja2" in found


def test_a_built_wheel_ships_every_sql_source_and_template_without_warnings(
    tmp_path: Path,
) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    output = res.stdout + res.stderr
    for warning in ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "is absent from"):
        assert warning not in output, output
    (wheel,) = tmp_path.glob("pgtenancy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    root = sql_dir()
    sources = {f"pgtenancy/sql/{p.relative_to(root)}" for p in root.rglob("*.sql")}
    sources.add("pgtenancy/sql/tenancy.toml")
    templates = {
        f"pgtenancy/generator/templates/{p.name}"
        for p in (REPO / "generator" / "templates").glob("*.j2")
    }
    assert any(s.startswith("pgtenancy/sql/migrations/") for s in sources)
    assert templates
    assert sources <= names, sorted(sources - names)
    assert templates <= names, sorted(templates - names)
    for module in ("__init__", "cli", "context", "migrate", "resources"):
        assert f"pgtenancy/{module}.py" in names
    for module in ("__init__", "cluster", "template", "tokens", "plugin"):
        assert f"pgtenancy/testing/{module}.py" in names
    assert "pgtenancy/py.typed" in names
