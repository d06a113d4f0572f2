"""PostgreSQL default privileges: no future object of a tenant is born readable by others.

``ALTER DEFAULT PRIVILEGES [FOR ROLE r] [IN SCHEMA s] GRANT ...`` grants on every
object created later: the next migration's table, a restore's tables. An entry
in a tenant schema, or a global entry of a role that creates objects in tenants
(the tenant's own role, an operator), that grants to PUBLIC or to a role other
than the tenant's own and the operators (``isolation.allowed_roles``) is a FAIL,
with the ALTER DEFAULT PRIVILEGES ... REVOKE that removes it. PostgreSQL's own
defaults (PUBLIC may EXECUTE routines and use types) are not entries of anyone's.
"""

from __future__ import annotations

from collections import defaultdict

from docex_ops.backends.pg_sql import quote_ident
from docex_ops.isolation import pg_facts_access as access
from docex_ops.isolation.context import IsolationContext
from docex_ops.isolation.pg_remedy import role_sql
from docex_ops.isolation.results import DEPLOYMENT, CheckResult, fail, with_passes
from docex_ops.tenancy import role_name_for

NAME = "default_privileges"
OBJECT_TYPES = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}
# What a global entry holds because PostgreSQL grants it by default anyway.
_ORDER = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER",
          "USAGE", "CREATE", "EXECUTE", "MAINTAIN"]  # as GRANT lists them
_BUILT_IN = {("f", access.PUBLIC, "EXECUTE"), ("T", access.PUBLIC, "USAGE")}


def check_default_privileges(ctx: IsolationContext) -> list[CheckResult]:
    role_of = {t: role_name_for(t) for t in ctx.tenants}
    tenant_of_role = {r: t for t, r in role_of.items()}
    operators = ctx.operator_roles
    entries = access.default_acls(ctx.require_catalog(), ctx.subject_locations(),
                                  [*(role_of[t] for t in ctx.subjects), *sorted(operators)])
    grouped: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for e in entries:
        if not e.schema and (e.objtype, e.grantee, e.privilege) in _BUILT_IN:
            continue
        tenant = ctx.tenant_of.get(e.schema) or tenant_of_role.get(e.role)
        own = role_of[tenant] if tenant else None
        if e.grantee in operators or e.grantee == own:
            continue
        grouped[(e.role, e.schema, e.objtype, e.grantee)].append(e.privilege)
    findings = [_finding(ctx, key, privileges, tenant_of_role)
                for key, privileges in grouped.items()]
    flagged = ctx.subjects if any(r.tenant == DEPLOYMENT for r in findings) else ()
    return with_passes(NAME, ctx.subjects, findings, "-",
                       "no default privilege grants the tenant's future objects to anyone else",
                       also_flagged=flagged)


def _finding(ctx: IsolationContext, key: tuple[str, str, str, str], privileges: list[str],
             tenant_of_role: dict[str, str]) -> CheckResult:
    role, schema, objtype, grantee = key
    objects = OBJECT_TYPES.get(objtype, objtype)
    where = f" IN SCHEMA {quote_ident(schema)}" if schema else ""
    privs = ", ".join(sorted(set(privileges), key=_ORDER.index))
    remedy = (f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote_ident(role)}{where} REVOKE {privs} "
              f"ON {objects} FROM {role_sql(grantee)};")
    who = "PUBLIC (every role)" if grantee == access.PUBLIC else f"role {grantee}"
    tenant = ctx.tenant_of.get(schema) or tenant_of_role.get(role)
    if schema:
        scope = f"every {objects.lower()[:-1]} {role} creates in {schema}"
    elif tenant:
        scope = f"every {objects.lower()[:-1]} the tenant role {role} creates"
    else:
        scope = (f"every {objects.lower()[:-1]} the operator {role} creates, in every tenant "
                 "provisioned, migrated or restored from now on")
    label = f"default privileges for {role}" + (f" in {schema}" if schema else "")
    result = fail(NAME, tenant or DEPLOYMENT, label,
                  f"{scope} is granted {privs} to {who}; revoke the default, or accept it "
                  f"with --allow {grantee}", remedy=remedy)
    return ctx.judged(result, grantee)
