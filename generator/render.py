"""Render a spec's SQL and pgTAP tests from a catalog snapshot with the Jinja templates.

:func:`render` is pure: the spec and the snapshot in, the files (or a :class:`SpecError`) out;
nothing here talks to the database. Templates never splice a name: identifiers go through
``qident`` and literals through ``qliteral``; undefined variables are errors
(``StrictUndefined``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .personal import PersonalInfo, personal_infos
from .snapshot import Snapshot, TableInfo, qualified, table_infos
from .spec import Spec, SpecError, TableSpec, bind_roles

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

SELECT_POLICY = "tenant rows are visible to readers of the tenant"
INSERT_POLICY = "tenant rows are inserted by writers of the tenant"
UPDATE_POLICY = "tenant rows are updated by writers of the tenant"
DELETE_POLICY = "tenant rows are deleted by writers of the tenant"
OWNER_POLICY = "pgtenancy functions manage every row"
#: Every policy name the generator can emit, in the order they are dropped.
ALL_POLICY_NAMES: tuple[str, ...] = (
    SELECT_POLICY,
    INSERT_POLICY,
    UPDATE_POLICY,
    DELETE_POLICY,
    OWNER_POLICY,
)


def qident(value: object) -> str:
    """Quote an SQL identifier: always double-quoted, inner quotes doubled."""
    text = _text(value, "identifier")
    return '"' + text.replace('"', '""') + '"'


def qliteral(value: object) -> str:
    """Quote an SQL string literal (standard_conforming_strings): inner quotes doubled."""
    text = _text(value, "literal")
    return "'" + text.replace("'", "''") + "'"


def comment_text(value: object) -> str:
    """Text safe inside a ``--`` comment: control characters are shown escaped."""
    return "".join(
        ch if ord(ch) >= 0x20 and ord(ch) != 0x7F else f"\\x{ord(ch):02x}" for ch in str(value)
    )


def pg_text_array(values: Sequence[str]) -> str:
    """The text of a ``text[]`` literal: ``{"id","a \\"b\\""}``, every element double-quoted."""
    parts = []
    for value in values:
        text = _text(value, "array element")
        parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"{what} {value!r} contains NUL")
    return value


@dataclass(frozen=True)
class Policy:
    """One ``create policy``: ``roles`` None means the expression is simply ``true``."""

    name: str
    command: str
    grantee: str
    roles: tuple[str, ...] | None
    using: bool
    check: bool
    comment: str


def _list(roles: Sequence[str]) -> str:
    if len(roles) == 1:
        return roles[0]
    return ", ".join(roles[:-1]) + " or " + roles[-1]


def policies_for(table: TableSpec) -> list[Policy]:
    """The policies of one table, in the order they are created (sorted by name in tests)."""
    result = [
        Policy(
            SELECT_POLICY,
            "select",
            "public",
            table.read,
            using=True,
            check=False,
            comment=f"Members of the current tenant with role {_list(table.read)} (and service "
            "contexts) see its rows; without a valid tenant context no row is visible.",
        )
    ]
    if table.write:
        writers = _list(table.write)
        result += [
            Policy(
                INSERT_POLICY,
                "insert",
                "public",
                table.write,
                using=False,
                check=True,
                comment=f"Members with role {writers} (and service contexts) insert rows "
                "into the current tenant only.",
            ),
            Policy(
                UPDATE_POLICY,
                "update",
                "public",
                table.write,
                using=True,
                check=True,
                comment=f"Members with role {writers} (and service contexts) update rows "
                "of the current tenant, which stay in it.",
            ),
            Policy(
                DELETE_POLICY,
                "delete",
                "public",
                table.write,
                using=True,
                check=False,
                comment=f"Members with role {writers} (and service contexts) delete rows "
                "of the current tenant only.",
            ),
        ]
    if table.owner_access:
        result.append(
            Policy(
                OWNER_POLICY,
                "all",
                "tenancy_owner",
                None,
                using=True,
                check=True,
                comment="tenancy_owner, which acts only through pgtenancy's own functions, "
                "reads and writes every row of every tenant.",
            )
        )
    return result


def privileges_for(table: TableSpec) -> list[str]:
    """Table privileges of tenancy_app, in a fixed order."""
    return ["select"] + (["insert", "update", "delete"] if table.write else [])


#: Per type of tenant column: the SQL giving the current tenant's value of the column, as a
#: function of the member roles' array (the policies; None: any role), and its default.
_CONTEXT_FUNCTIONS = {
    "uuid": ("tenancy.context_tenant_id({})", "tenancy.current_tenant_id()"),
    "bigint": (
        "tenancy.tenant_key_int8(tenancy.context_tenant_key({}))",
        "tenancy.tenant_key_int8(tenancy.current_tenant_key())",
    ),
    "integer": (
        "tenancy.tenant_key_int4(tenancy.context_tenant_key({}))",
        "tenancy.tenant_key_int4(tenancy.current_tenant_key())",
    ),
    "text": ("tenancy.context_tenant_key({})", "tenancy.current_tenant_key()"),
}

#: The flavours ``generate --flavour`` renders: ``postgres`` (the default) and ``citus``.
FLAVOURS = ("postgres", "citus")

#: The Citus flavour's policy keys: the worker-verifiable context form (tenancy.context_mac,
#: docs/citus.md), called without a sub-select, which Citus refuses in policies of distributed
#: tables. The column defaults stay the postgres flavour's (Citus evaluates them on the
#: coordinator, where the session's context is).
_CITUS_CONTEXT_FUNCTIONS = {
    "uuid": "tenancy.context_tenant_id_mac({})",
    "bigint": "tenancy.tenant_key_int8(tenancy.context_tenant_key_mac({}))",
    "integer": "tenancy.tenant_key_int4(tenancy.context_tenant_key_mac({}))",
    "text": "tenancy.context_tenant_key_mac({})",
}


def tenant_value(tenant_type: str, roles: Sequence[str], flavour: str = "postgres") -> str:
    """What a policy compares the tenant column with: the context's tenant id or key (as the
    column's type holds it) when its role is one of ``roles``. The postgres flavour's policies
    wrap it in a sub-select (evaluated once per statement); the citus flavour's call it bare."""
    roles_array = "array[" + ", ".join(qliteral(r) for r in roles) + "]"
    if flavour == "citus":
        return _CITUS_CONTEXT_FUNCTIONS[tenant_type].format(roles_array)
    return _CONTEXT_FUNCTIONS[tenant_type][0].format(roles_array)


def tenant_default(tenant_type: str) -> str:
    """The tenant column's default: the current tenant's id or key."""
    return _CONTEXT_FUNCTIONS[tenant_type][1]


def sql_array(values: Sequence[str], element_type: str) -> str:
    """``array['a', 'b']::text[]``: every element a quoted literal, typed even when empty."""
    return "array[" + ", ".join(qliteral(v) for v in values) + f"]::{element_type}[]"


class Renderer:
    """The Jinja environment; ``template_dirs`` are searched before the built-in templates."""

    def __init__(self, template_dirs: Sequence[Path] = (), flavour: str = "postgres") -> None:
        if flavour not in FLAVOURS:
            raise SpecError(f"unknown flavour {flavour!r} (valid: {', '.join(FLAVOURS)})")
        self.flavour = flavour
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(d)) for d in template_dirs]
        loaders.append(jinja2.FileSystemLoader(str(TEMPLATE_DIR)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["qident"] = qident
        self.env.filters["qliteral"] = qliteral
        self.env.filters["comment_text"] = comment_text
        self.env.filters["pg_text_array"] = pg_text_array
        self.env.globals["tenant_value"] = tenant_value

    def _context(
        self, info: TableInfo, spec_display: str, personal: PersonalInfo | None = None
    ) -> dict[str, object]:
        table = info.spec
        return {
            "personal": personal,
            "flavour": self.flavour,
            "spec_display": spec_display,
            "table": table,
            "qtable": qident(table.schema) + "." + qident(table.name),
            "policies": policies_for(table),
            "all_policy_names": ALL_POLICY_NAMES,
            "privileges": privileges_for(table),
            "sequences": info.serial_sequences,
            "descendants": info.descendants,
            "covered": [qualified(d.schema, d.name) for d in info.descendants],
            "tenant_column": table.tenant_column,
            "tenant_type": info.tenant_type,
            "tenant_default": tenant_default(info.tenant_type),
            "audit_key": info.audit_key,
            "audit_exclude": table.audit_exclude,
            "audit_entity": qualified(table.schema, table.name),
        }

    def _render(self, name: str, context: dict[str, object]) -> str:
        text = self.env.get_template(name).render(context)
        # One trailing newline, whatever the templates end with.
        return text.rstrip("\n") + "\n"

    def policies(
        self, info: TableInfo, spec_display: str, personal: PersonalInfo | None = None
    ) -> str:
        """The policy file of one table (``personal``: its export and erasure functions)."""
        return self._render("policies.sql.j2", self._context(info, spec_display, personal))

    def policy_statements(self, info: TableInfo, spec_display: str, qtable: str) -> str:
        """The ``create policy`` (and ``comment on policy``) statements of one table's policy
        file, on the table ``qtable`` names instead (``pgtenancy doctor`` renders them on a
        temporary table to compare them with the live ones)."""
        context = self._context(info, spec_display)
        context["qtable"] = qtable
        return "\n".join(
            self._render("policy.sql.j2", {**context, "policy": policy})
            for policy in policies_for(info.spec)
        )

    def isolation_test(self, info: TableInfo, spec_display: str) -> str:
        """The pgTAP test of one table: one call of ``tenancy_test.tenant_table`` with its data."""
        table = info.spec
        context = self._context(info, spec_display)
        context["policies"] = sorted(policies_for(table), key=lambda p: p.name)
        context["roles"] = sql_array(sorted(info.roles), "text")
        context["read"] = sql_array(table.read, "text")
        context["write"] = sql_array(table.write, "text")
        context["sequences"] = sql_array(
            [qualified(s.schema, s.name) for s in info.serial_sequences], "regclass"
        )
        context["descendants"] = sql_array(
            [qualified(d.schema, d.name) for d in info.descendants], "regclass"
        )
        context["sample"] = qliteral(json.dumps(dict(table.sample), ensure_ascii=False))
        context["fixtures"] = table.fixtures
        return self._render("pgtap_isolation.sql.j2", context)


@dataclass(frozen=True)
class Output:
    """What a spec renders to: file name to text, per directory, and warnings to print."""

    policies: dict[str, str]
    tests: dict[str, str]
    #: Key-layout problems the policy files would fail with (TN007) if applied now.
    warnings: tuple[str, ...]


def render(
    spec: Spec, snapshot: Snapshot, renderer: Renderer | None = None, flavour: str = "postgres"
) -> Output:
    """Check the spec against the snapshot and render every file; raises :class:`SpecError`.
    ``flavour`` is used when no ``renderer`` is given (a renderer carries its own)."""
    renderer = renderer or Renderer(flavour=flavour)
    # Every table is checked, and every problem reported at once (one line each, by table).
    problems: list[str] = []
    tables = bind_roles(spec, snapshot.member_roles, problems)
    try:
        infos = table_infos(spec.display, tables, snapshot)
    except SpecError as exc:
        problems.extend(str(exc).splitlines())
    personal: dict[str, PersonalInfo] = {}
    if not problems:
        personal, found = personal_infos(infos, snapshot, spec.display)
        problems.extend(found)
    if problems:
        raise SpecError("\n".join(sorted(problems)))
    return Output(
        policies={
            i.spec.file_name: renderer.policies(i, spec.display, personal.get(i.spec.key))
            for i in infos
        },
        tests={i.spec.file_name: renderer.isolation_test(i, spec.display) for i in infos},
        warnings=tuple(
            f"{i.spec.key}: applying its policy file would fail now: {i.layout_problem}"
            for i in infos
            if i.layout_problem
        ),
    )
