"""The spec's test data keys (``sample``, ``fixtures``): parsed, sorted, and refused when wrong.

Spec parsing needs no database; the generated test that uses the keys runs under pg_prove.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pgtenancy.generator.spec import SpecError, parse_spec

HEAD = '[tables."app.documents"]\n'


def parse(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(HEAD + text, Path("tenancy.toml"))
    return str(caught.value)


def test_sample_and_fixtures_are_read() -> None:
    spec = parse_spec(
        HEAD + 'sample = { title = "\'t\'", project_id = "(select 1)" }\n'
        "fixtures = [\"insert into app.projects (name) values ('p')\"]\n",
        Path("tenancy.toml"),
    )
    (table,) = spec.tables
    assert table.sample == (("project_id", "(select 1)"), ("title", "'t'"))
    assert table.fixtures == ("insert into app.projects (name) values ('p')",)


def test_without_test_data_nothing_is_added() -> None:
    (table,) = parse_spec(HEAD, Path("tenancy.toml")).tables
    assert table.sample == () and table.fixtures == ()


def test_sample_not_a_table() -> None:
    assert "sample must be a table of column = SQL expression, got 'x'" in parse('sample = "x"\n')


def test_sample_value_not_a_string() -> None:
    message = parse("sample = { title = 3 }\n")
    assert "sample value of column 'title' must be an SQL expression in a string, got 3" in message


def test_sample_sets_tenant_id() -> None:
    assert "sample sets tenant_id" in parse('sample = { tenant_id = "null" }\n')


def test_fixtures_not_a_list_of_statements() -> None:
    assert "fixtures must be a list of SQL statements, got [1]" in parse("fixtures = [1]\n")
    assert "fixtures must be a list of SQL statements" in parse('fixtures = "insert"\n')
