"""The generator's golden cases, run without a database (see golden.py for the layout).

``PGTENANCY_UPDATE_GOLDEN=1 pytest tests/generator`` (or ``python tests/generator/golden.py``,
which ``make generate`` runs) rewrites the expected outputs from the specs and snapshots.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import golden
import pytest
from pgtenancy.generator import cli_main
from pgtenancy.generator.render import TEMPLATE_DIR, Renderer, render
from pgtenancy.generator.snapshot import Descendant, Snapshot
from pgtenancy.generator.spec import Spec, SpecError, parse_spec
from sqlfluff.core import FluffConfig, Linter

REPO = Path(__file__).resolve().parents[2]
UPDATE_GOLDEN = os.environ.get("PGTENANCY_UPDATE_GOLDEN") == "1"
CASES = golden.case_names()


@pytest.mark.parametrize("name", CASES)
def test_case(name: str) -> None:
    case = golden.CASES / name
    if UPDATE_GOLDEN:
        golden.write(case)
    assert golden.differences(case) == [], "run python tests/generator/golden.py"


@pytest.mark.parametrize("name", CASES)
def test_command_line_agrees_with_case(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pgtenancy generate --snapshot`` writes the case's files and warnings, or refuses with
    its message (exit 2), writing nothing."""
    case = golden.CASES / name
    shutil.copyfile(case / "tenancy.toml", tmp_path / "tenancy.toml")
    monkeypatch.chdir(tmp_path)
    code = cli_main(
        ["--spec", "tenancy.toml", "--out", "policies", "--tests", "tests",
         "--snapshot", str(case / "catalog.json"), "--flavour", golden.case_flavour(case)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    want = golden.on_disk(case)
    if "error.txt" in want:
        assert code == 2
        assert out == ""
        assert err == want["error.txt"]
        assert not (tmp_path / "policies").exists() and not (tmp_path / "tests").exists()
        return
    assert code == 0, err
    assert err == want.pop("warnings.txt", "")
    written = {
        f"{directory}/{path.name}": path.read_text()
        for directory in ("policies", "tests")
        for path in (tmp_path / directory).iterdir()
    }
    assert written == want


def test_a_changed_template_fails_the_check(tmp_path: Path) -> None:
    """The golden check sees a template change: a user template directory overriding one
    built-in template (as the generator allows) makes every policy file of a case differ."""
    override = tmp_path / "templates"
    override.mkdir()
    text = (TEMPLATE_DIR / "row_security.sql.j2").read_text()
    assert "force row level security" in text
    (override / "row_security.sql.j2").write_text(
        text.replace("force row level", "no force row level")
    )
    case = golden.CASES / "app"
    assert golden.differences(case) == []
    assert golden.differences(case, Renderer([override])) == [
        "app/policies/app.documents.sql: differs",
        "app/policies/app.projects.sql: differs",
    ]


def test_a_changed_snapshot_fails_the_check(tmp_path: Path) -> None:
    """A case whose catalog gained a serial column renders a different policy file."""
    case = tmp_path / "case"
    shutil.copytree(golden.CASES / "read_only", case)
    snapshot = golden.load_case_snapshot(case)
    relation = snapshot.relations[0]
    assert relation.serial_sequences
    changed = dataclasses.replace(
        snapshot, relations=(dataclasses.replace(relation, serial_sequences=()),)
    )
    (case / "catalog.json").write_text(changed.to_json())
    assert golden.differences(case) == [
        "case/policies/gen.good.sql: differs",
        "case/tests/gen.good.sql: differs",
    ]


@pytest.mark.parametrize("name", [n for n in CASES if (golden.CASES / n / "catalog.json").exists()])
def test_snapshot_json_round_trips(name: str) -> None:
    text = (golden.CASES / name / "catalog.json").read_text()
    assert Snapshot.from_json(text).to_json() == text


def test_unreadable_snapshot_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tenancy.toml").write_text('[tables."gen.good"]\n')
    (tmp_path / "catalog.json").write_text('{"format": 1, "member_roles": "owner"}')
    code = cli_main(["--spec", "tenancy.toml", "--out", "out", "--snapshot", "catalog.json"])
    assert code == 2
    assert capsys.readouterr().err == (
        "pgtenancy generate: catalog.json: not a catalog snapshot: member_roles must be a list, "
        "got 'owner'\n"
    )
    assert not (tmp_path / "out").exists()


def _spec(text: str) -> Spec:
    return parse_spec(text, Path("tenancy.toml"), "tenancy.toml")


def test_member_roles_come_from_the_snapshot() -> None:
    """Role names are checked against the snapshot's roles, not a list in Python: a role the
    catalog adds is accepted, gets its case in the isolation test, and is in the messages."""
    snapshot = golden.load_case_snapshot(golden.CASES / "two_tables")
    assert snapshot.member_roles == ("owner", "admin", "member", "viewer")
    spec = _spec('[tables."gen.other"]\nread = ["owner", "auditor"]\nwrite = ["owner"]\n')
    with pytest.raises(SpecError, match=r"unknown role 'auditor' in read \(valid roles: admin, "):
        render(spec, snapshot)
    wider = dataclasses.replace(snapshot, member_roles=(*snapshot.member_roles, "auditor"))
    output = render(spec, wider)
    assert "array['auditor', 'owner']" in output.policies["gen.other.sql"]
    assert (
        "p_roles => array['admin', 'auditor', 'member', 'owner', 'viewer']::text[]"
        in output.tests["gen.other.sql"]
    )
    with pytest.raises(SpecError, match=r"valid roles: admin, auditor, member, owner, viewer\)"):
        render(_spec('[tables."gen.other"]\nread = ["root"]\n'), wider)
    # Defaults: read is every role, write every role but the least privileged.
    defaults = render(_spec('[tables."gen.other"]\n'), wider).policies["gen.other.sql"]
    assert "array['admin', 'auditor', 'member', 'owner', 'viewer']" in defaults
    assert "array['admin', 'member', 'owner', 'viewer']" in defaults


def test_runtime_partitions_render_the_same_whatever_partitions_exist() -> None:
    """With ``partitions = "runtime"`` the files do not depend on the partitions of the moment:
    a snapshot with another month's partition renders the same text (``generate --check`` stays
    current), while with ``declared`` the new partition gets its own section."""
    case = golden.CASES / "partitions_runtime"
    spec, snapshot = golden.load_case_spec(case), golden.load_case_snapshot(case)
    usage = snapshot.relation("gen", "usage")
    assert usage is not None and usage.descendants
    month = Descendant("gen", "usage_2026_02", True, "gen", "usage")
    grown = dataclasses.replace(
        snapshot,
        relations=tuple(
            dataclasses.replace(r, descendants=(*r.descendants, month)) if r is usage else r
            for r in snapshot.relations
        ),
    )
    assert render(spec, grown) == render(spec, snapshot)
    declared = _spec('[tables."gen.usage"]\n')
    assert '"gen"."usage_2026_02"' not in render(declared, snapshot).policies["gen.usage.sql"]
    assert '"gen"."usage_2026_02"' in render(declared, grown).policies["gen.usage.sql"]


def test_a_catalog_without_member_roles_is_refused() -> None:
    snapshot = golden.load_case_snapshot(golden.CASES / "two_tables")
    with pytest.raises(SpecError) as caught:
        render(_spec('[tables."gen.other"]\n'), dataclasses.replace(snapshot, member_roles=()))
    assert str(caught.value) == (
        "tenancy.toml: the database has no member roles (enum type tenancy.member_role is "
        "missing or empty): run pgtenancy migrate on it first"
    )


#: Cases whose output is linted (sqlfluff takes seconds a file): every construct the templates
#: emit (writers, read-only, owner access, serial sequences, descendants, partitions created at
#: run time, odd names) is in one.
LINTED = (
    "app",
    "citus_app",
    "citus_key_bigint",
    "core",
    "key_bigint",
    "key_text",
    "odd_identifiers",
    "partitions",
    "partitions_runtime",
    "read_only",
)


def test_rendered_sql_passes_sqlfluff() -> None:
    """The policy files and tests the cases render lint clean under the repository's rules."""
    linter = Linter(config=FluffConfig.from_path(str(REPO)))
    problems = []
    for name in LINTED:
        for relative, text in golden.expected(golden.CASES / name).items():
            if not relative.endswith(".sql"):
                continue
            linted = linter.lint_string(text, fname="generated.sql")
            problems += [
                f"{name}/{relative} {v.rule_code()} line {v.line_no}: {v.desc()}"
                for v in linted.get_violations()
            ]
    assert problems == []
