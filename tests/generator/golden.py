"""Golden cases of the generator: one directory per case, rendered without a database.

A case is ``tests/generator/cases/<case>/`` holding

* ``tenancy.toml``: the spec (its header in the output reads ``tenancy.toml``);
* ``flavour`` (optional): the flavour the case renders (``citus``; without it ``postgres``);
* ``catalog.json``: the catalog snapshot the spec is checked against and rendered from (absent
  when the spec is refused for its structure, before any catalog is read);
* what ``pgtenancy generate`` produces from them: ``policies/<schema>.<table>.sql`` and
  ``tests/<schema>.<table>.sql``, and ``warnings.txt`` when it warns; or ``error.txt`` when it
  refuses (exit 2, nothing written). Both text files hold what it prints on stderr.

``python tests/generator/golden.py`` rewrites every case's expected output from its spec and
snapshot; ``--check`` only lists the cases whose output would change (exit 1). The snapshots
themselves are read from a live catalog (``tests/generator/schema.sql`` applied to a migrated
test database) by ``PGTENANCY_UPDATE_GOLDEN=1 pytest tests/py/test_generator.py -k snapshot``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pgtenancy.generator.render import Renderer, render
from pgtenancy.generator.snapshot import Snapshot
from pgtenancy.generator.spec import Spec, SpecError, parse_spec

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
#: The fixture tables the snapshots of the cases are read from.
SCHEMA = HERE / "schema.sql"
#: What the spec is called in generated headers and messages.
SPEC_NAME = "tenancy.toml"
OUTPUT_DIRS = ("policies", "tests")
OUTPUT_FILES = ("warnings.txt", "error.txt")
#: How ``pgtenancy generate`` starts the lines it prints on stderr.
PREFIX = "pgtenancy generate: "


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / SPEC_NAME).is_file())


def load_case_spec(case: Path) -> Spec:
    """The case's spec, checked for structure; raises :class:`SpecError`."""
    return parse_spec((case / SPEC_NAME).read_text(encoding="utf-8"), case / SPEC_NAME, SPEC_NAME)


def case_flavour(case: Path) -> str:
    """The flavour the case renders: its ``flavour`` file's one word, else ``postgres``."""
    path = case / "flavour"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else "postgres"


def load_case_snapshot(case: Path) -> Snapshot:
    return Snapshot.from_json((case / "catalog.json").read_text(encoding="utf-8"))


def expected(case: Path, renderer: Renderer | None = None) -> dict[str, str]:
    """What the case's spec and snapshot render to: relative path to text."""
    try:
        spec = load_case_spec(case)
        if not (case / "catalog.json").is_file():
            raise AssertionError(f"{case.name}: the spec is valid but the case has no catalog.json")
        output = render(spec, load_case_snapshot(case), renderer, case_flavour(case))
    except SpecError as exc:
        return {"error.txt": "".join(f"{PREFIX}{line}\n" for line in str(exc).splitlines())}
    files = {f"policies/{name}": text for name, text in output.policies.items()}
    files.update({f"tests/{name}": text for name, text in output.tests.items()})
    if output.warnings:
        files["warnings.txt"] = "".join(f"{PREFIX}warning: {w}\n" for w in output.warnings)
    return files


def on_disk(case: Path) -> dict[str, str]:
    """The case's checked-in expected output."""
    files: dict[str, str] = {}
    for directory in OUTPUT_DIRS:
        for path in sorted((case / directory).glob("*.sql")):
            files[f"{directory}/{path.name}"] = path.read_text(encoding="utf-8")
    for name in OUTPUT_FILES:
        if (case / name).is_file():
            files[name] = (case / name).read_text(encoding="utf-8")
    return files


def differences(case: Path, renderer: Renderer | None = None) -> list[str]:
    """How the checked-in output differs from what the case renders to (empty: up to date)."""
    want, have = expected(case, renderer), on_disk(case)
    lines = [f"{case.name}/{p}: missing" for p in sorted(want.keys() - have.keys())]
    lines += [f"{case.name}/{p}: no longer produced" for p in sorted(have.keys() - want.keys())]
    lines += [
        f"{case.name}/{p}: differs" for p in sorted(want.keys() & have.keys()) if want[p] != have[p]
    ]
    return lines


def write(case: Path) -> None:
    """Rewrite the case's expected output."""
    want = expected(case)
    for relative in on_disk(case).keys() - want.keys():
        (case / relative).unlink()
    for relative, text in want.items():
        path = case / relative
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    for directory in OUTPUT_DIRS:
        if (case / directory).is_dir() and not any((case / directory).iterdir()):
            (case / directory).rmdir()


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print("usage: golden.py [--check]", file=sys.stderr)
        return 2
    stale = [line for name in case_names() for line in differences(CASES / name)]
    if check:
        for line in stale:
            print(line)
        if stale:
            print(
                "golden cases are out of date: run python tests/generator/golden.py",
                file=sys.stderr,
            )
            return 1
        print(f"{len(case_names())} golden cases are up to date")
        return 0
    for name in case_names():
        write(CASES / name)
    print(f"{len(case_names())} golden cases written ({len(stale)} changes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
