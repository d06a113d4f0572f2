"""A moved tenant keeps its owner role and its grants (online and offline), a grant to a role
the target lacks refuses the move before anything is made there, and a crash is recovered."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import server_connect
from move_support import Crash, assert_no_replication_left, fleet_of, names_on, seed

from docex_ops.isolation import Status, verify_isolation
from docex_ops.manager.tenant_manager import TenantDatabaseManager
from docex_ops.move.journal import COPYING, RENAMED, SYNCED, VERIFIED
from docex_ops.move.pg_acl import MissingRolesError
from docex_ops.move.pg_online import MoveError
from docex_ops.move.run import MoveOptions, finish_move, move_tenant
from docex_ops.tenants.lifecycle import ensure_tenant_role
from docex_ops.topology.directory import ACTIVE

ONLINE, OFFLINE = MoveOptions(), MoveOptions(offline=True)
MODES = pytest.mark.parametrize("options", [ONLINE, OFFLINE], ids=["online", "offline"])

# Owners and privileges of the schema and its relations, ACLs exploded and sorted (a NULL
# ACL read as its default), and the schema's default privileges: what a move must keep.
_ACL_SQL = """
SELECT '', pg_get_userbyid(n.nspowner),
       ARRAY(SELECT a::text FROM unnest(coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))) a
             ORDER BY 1)
  FROM pg_namespace n WHERE n.nspname = %(s)s
UNION ALL
SELECT c.relname, pg_get_userbyid(c.relowner),
       ARRAY(SELECT a::text FROM unnest(coalesce(c.relacl, acldefault(
                 (CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a
             ORDER BY 1)
         || ARRAY(SELECT t.attname || ':' || t.attacl::text FROM pg_attribute t
                   WHERE t.attrelid = c.oid AND t.attacl IS NOT NULL ORDER BY 1)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'S', 'v')
UNION ALL
SELECT 'default:' || d.defaclobjtype::text, pg_get_userbyid(d.defaclrole), d.defaclacl::text[]
  FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace
 WHERE n.nspname = %(s)s
ORDER BY 1
"""


def _sql(manager: TenantDatabaseManager, server: str, sql: str,
         params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    conn = server_connect(manager.settings, server)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def _acl(manager: TenantDatabaseManager, server: str, schema: str) -> list[tuple[Any, ...]]:
    return _sql(manager, server, _ACL_SQL, {"s": schema})


def _role_exists(manager: TenantDatabaseManager, server: str, role: str) -> bool:
    return bool(_sql(manager, server, "SELECT 1 FROM pg_roles WHERE rolname = %(r)s",
                     {"r": role}))


@pytest.fixture
def roles(fleet_manager: TenantDatabaseManager) -> Iterator[list[str]]:
    """Roles a test makes on the per-run clusters b and c, dropped with what they own."""
    made: list[str] = []
    yield made
    for server in ("b", "c"):
        for role in made:
            if _role_exists(fleet_manager, server, role):
                _sql(fleet_manager, server, f'DROP OWNED BY "{role}" CASCADE; DROP ROLE "{role}"')


def _tenant_with_grants(manager: TenantDatabaseManager, roles: list[str], reader_on: list[str]
                        ) -> tuple[str, str, str, str]:
    """A tenant on b with its own role, and a second role (made on ``reader_on``) that may read
    it, update one column and read the tables its role makes later. Returns (tenant,
    schema, tenant role, reader)."""
    hexed = uuid.uuid4().hex[:8]
    tenant_id, reader = f"acl{hexed}", f"docex_reader_{hexed}"
    seed(manager, tenant_id, "b", 30)
    role = ensure_tenant_role(manager, tenant_id)
    roles.extend([role, reader])
    for server in reader_on:
        _sql(manager, server, f"CREATE ROLE {reader} NOLOGIN")
    schema = fleet_of(manager).location(tenant_id)
    _sql(manager, "b", f"GRANT USAGE ON SCHEMA {schema} TO {reader};"
                       f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader};"
                       f"GRANT UPDATE (description) ON {schema}.docbasket TO {reader};"
                       f"ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA {schema} "
                       f"GRANT SELECT ON TABLES TO {reader}")
    return tenant_id, schema, role, reader


def _assert_kept(manager: TenantDatabaseManager, tenant_id: str, schema: str, role: str,
                 reader: str, source_acl: list[tuple[Any, ...]]) -> None:
    """On c: the tenant role owns everything, the reader has its rights, and the owners and
    ACLs are exactly the source's; verify-isolation passes there and names the reader."""
    target_acl = _acl(manager, "c", schema)
    assert target_acl == source_acl
    assert {owner for _, owner, _ in target_acl} == {role}
    rights = _sql(manager, "c",
                  "SELECT has_schema_privilege(%(r)s, %(s)s, 'USAGE'), "
                  "has_table_privilege(%(r)s, %(t)s, 'SELECT'), "
                  "has_table_privilege(%(r)s, %(t)s, 'DELETE'), "
                  "has_column_privilege(%(r)s, %(t)s, 'description', 'UPDATE'), "
                  "pg_has_role(current_user, %(o)s, 'MEMBER')",
                  {"r": reader, "s": schema, "t": f"{schema}.docbasket", "o": role})
    assert rights == [(True, True, False, True, True)]
    assert len([row for row in target_acl if row[0].startswith("default:")]) == 1
    # The reader (and the auditor it granted to) are no operators: their grants and the
    # default privilege are FAILs unless accepted; accepted, they stay listed as PASS rows.
    report = verify_isolation(manager, [tenant_id],
                              allow=[reader, reader.replace("reader", "auditor")])
    assert [r for r in report.results if r.status != Status.PASS] == []
    assert {r.check for r in report.results if f"--allow {reader}" in r.detail} == \
        {"roles", "default_privileges"}
    readers = [r.detail for r in report.results if r.check == "readers" and r.server == "c"]
    assert readers == [f"owner {role}; readers besides owner and superusers: {reader}"]


@MODES
def test_a_moved_tenant_keeps_its_owner_role_and_grants(
        fleet_manager: TenantDatabaseManager, roles: list[str], options: MoveOptions) -> None:
    tenant_id, schema, role, reader = _tenant_with_grants(fleet_manager, roles, ["b", "c"])
    auditor = reader.replace("reader", "auditor")  # gets SELECT from the reader, not the owner
    roles.append(auditor)
    for server in ("b", "c"):
        _sql(fleet_manager, server, f"CREATE ROLE {auditor} NOLOGIN")
    _sql(fleet_manager, "b", f"GRANT INSERT ON {schema}.docbasket TO {reader} WITH GRANT OPTION;"
                             f"SET ROLE {reader}; GRANT INSERT ON {schema}.docbasket TO {auditor}")
    source_acl = _acl(fleet_manager, "b", schema)
    assert f"{auditor}=a/{reader}" in str(source_acl)
    assert not _role_exists(fleet_manager, "c", role)  # the move has to make it
    result = move_tenant(fleet_manager, tenant_id, "c", options)
    assert result.outcome == "moved" and fleet_of(fleet_manager).server_of(tenant_id) == "c"
    assert len(names_on(fleet_manager, "c", schema) or []) == 30
    _assert_kept(fleet_manager, tenant_id, schema, role, reader, source_acl)
    assert _sql(fleet_manager, "c", "SELECT rolcanlogin FROM pg_roles WHERE rolname = %(r)s",
                {"r": role}) == [(False,)]
    finish_move(fleet_manager, tenant_id)


@MODES
def test_a_grant_to_a_role_the_target_lacks_refuses_the_move_up_front(
        fleet_manager: TenantDatabaseManager, roles: list[str], options: MoveOptions) -> None:
    tenant_id, schema, role, reader = _tenant_with_grants(fleet_manager, roles, ["b"])
    fleet = fleet_of(fleet_manager)
    steps: list[str] = []
    with pytest.raises(MissingRolesError, match=f"server 'c' has no role {reader},") as refused:
        move_tenant(fleet_manager, tenant_id, "c", options, on_step=steps.append)
    assert steps == []  # refused before the move started
    assert "nothing was changed on the target" in str(refused.value)
    assert role not in str(refused.value)  # the tenant's own role the move would make
    assert _sql(fleet_manager, "c", "SELECT 1 FROM pg_namespace WHERE nspname = %(s)s",
                {"s": schema}) == []
    assert not _role_exists(fleet_manager, "c", role)
    placed = fleet.placement(tenant_id)
    assert placed is not None and (placed.server, placed.state) == ("b", ACTIVE)
    assert fleet.moves.get(tenant_id) is None
    assert_no_replication_left(fleet_manager, ("b", "c"))
    # Once the role exists there the same move goes through, a sequence's grant included.
    _sql(fleet_manager, "c", f"CREATE ROLE {reader} NOLOGIN")
    _sql(fleet_manager, "b", f"CREATE SEQUENCE {schema}.probe_seq OWNED BY NONE;"
                             f"ALTER SEQUENCE {schema}.probe_seq OWNER TO {role};"
                             f"GRANT USAGE ON SEQUENCE {schema}.probe_seq TO {reader}")
    source_acl = _acl(fleet_manager, "b", schema)
    assert move_tenant(fleet_manager, tenant_id, "c", options).outcome == "moved"
    assert _acl(fleet_manager, "c", schema) == source_acl
    assert _sql(fleet_manager, "c", "SELECT has_sequence_privilege(%(r)s, %(q)s, 'USAGE')",
                {"r": reader, "q": f"{schema}.probe_seq"}) == [(True,)]


@pytest.mark.parametrize(("options", "step"), [
    (ONLINE, COPYING), (ONLINE, RENAMED), (OFFLINE, SYNCED), (OFFLINE, RENAMED)],
    ids=["online-copying", "online-renamed", "offline-synced", "offline-renamed"])
def test_a_crashed_move_of_a_tenant_with_a_role_is_completed_or_rolled_back(
        fleet_manager: TenantDatabaseManager, roles: list[str], options: MoveOptions,
        step: str) -> None:
    tenant_id, schema, role, reader = _tenant_with_grants(fleet_manager, roles, ["b", "c"])
    source_acl = _acl(fleet_manager, "b", schema)

    def crash_at(reached: str) -> None:
        if reached == step:
            raise Crash(reached)

    with pytest.raises(Crash):
        move_tenant(fleet_manager, tenant_id, "c", options, on_step=crash_at)
    fleet_manager.close_all_connections()
    rerun = move_tenant(fleet_manager, tenant_id, "c", options)
    done = step == RENAMED
    assert rerun.outcome == ("completed" if done else "rolled back") and rerun.rows == 30
    home, other = ("c", "b") if done else ("b", "c")
    assert fleet_of(fleet_manager).server_of(tenant_id) == home
    assert names_on(fleet_manager, other, schema) is None
    assert_no_replication_left(fleet_manager, ("b", "c"))
    if done:
        _assert_kept(fleet_manager, tenant_id, schema, role, reader, source_acl)
    else:
        assert _acl(fleet_manager, "b", schema) == source_acl  # the source never changed


@pytest.mark.parametrize(("options", "at", "damage", "reported"), [
    (ONLINE, VERIFIED, "ALTER TABLE {s}.docbasket OWNER TO postgres",
     "only on the target: TABLE docbasket owned by postgres"),
    (OFFLINE, SYNCED, "REVOKE SELECT ON {s}.docbasket FROM {reader}",
     "1 only on the source: SELECT on TABLE docbasket to {reader} by docex_t_"),
], ids=["online-owner", "offline-grant"])
def test_owners_or_grants_that_differ_roll_the_move_back(
        fleet_manager: TenantDatabaseManager, roles: list[str], options: MoveOptions, at: str,
        damage: str, reported: str) -> None:
    tenant_id, schema, _, reader = _tenant_with_grants(fleet_manager, roles, ["b", "c"])

    def spoil_target(step: str) -> None:
        if step == at:  # the copy has its owners and grants: change one behind our back
            _sql(fleet_manager, "c", damage.format(s=schema, reader=reader))

    with pytest.raises(MoveError, match="owners/privileges") as differ:
        move_tenant(fleet_manager, tenant_id, "c", options, on_step=spoil_target)
    assert reported.format(reader=reader) in str(differ.value)
    fleet = fleet_of(fleet_manager)
    assert fleet.server_of(tenant_id) == "b" and fleet.moves.get(tenant_id) is None
    assert names_on(fleet_manager, "c", schema) is None
    assert len(names_on(fleet_manager, "b", schema) or []) == 30
