#!/usr/bin/env python3
"""Every scenario of DocEX's multi-tenancy guide, run in order against docex-ops.

    python examples/multi_tenancy.py                      # SQLite in a temporary directory
    python examples/multi_tenancy.py --config pg.yaml     # your database (e.g. PostgreSQL)

Scenarios: basic usage; two tenants, isolated; TenantDatabaseManager
management (list, close one, close idle, close all); the missing-tenant
error; the tenant-id validation helper; the error-handling block (each of its
branches); and the audit trail the guide promises. Each check is printed;
the exit status is 1 if any check failed, 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from docex_ops import TenantDatabaseManager, UserContext, audit_trail
from docex_ops.compat.docex import DocEX
from docex_ops.config.settings import ConfigError, Settings, load_settings, settings_from_mapping

SAMPLE_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


class Checks:
    def __init__(self) -> None:
        self.passed, self.failed = 0, []  # type: ignore[var-annotated]

    def section(self, title: str) -> None:
        print(f"\n== {title}")

    def check(self, what: str, ok: bool, detail: object = "") -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}" + (f": {detail}" if detail != "" else ""))
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)

    def raises(self, what: str, exc_type: type[BaseException], func: Callable[[], object],
               must_contain: str = "") -> None:
        try:
            func()
        except exc_type as exc:
            self.check(what, must_contain in str(exc), f"{type(exc).__name__}: {exc}")
        else:
            self.check(what, False, f"no {exc_type.__name__} raised")


def sample(workdir: Path, name: str, body: bytes = SAMPLE_PDF) -> Path:
    path = workdir / name
    path.write_bytes(body + name.encode())
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def basic_usage(c: Checks, t1: str, workdir: Path) -> None:
    c.section("Basic usage")
    user_context = UserContext(user_id="alice", tenant_id=t1, user_email="alice@example.com")
    docEX = DocEX(user_context=user_context)
    basket = docEX.create_basket("invoices")
    source = sample(workdir, "invoice.pdf")
    document = basket.add(str(source))
    c.check(f"basket 'invoices' created in tenant {t1}", basket.name == "invoices", basket.id)
    c.check("document id has DocEX's prefix", document.id.startswith("doc_"), document.id)
    c.check("file stored under the tenant's own directory",
            document.file_path.is_file()
            and Path(docEX.files_dir) in document.file_path.parents, document.file_path)
    c.check("checksum is the source's sha256", document.checksum == sha256(source))
    c.check("document.read() returns the bytes", document.read() == source.read_bytes())
    c.check("basket.list_documents() shows it",
            [d.id for d in basket.list_documents()] == [document.id])


def multiple_tenants(c: Checks, t1: str, t2: str, workdir: Path) -> tuple[DocEX, DocEX]:
    c.section("Multiple tenants (completely isolated)")
    docEX1 = DocEX(user_context=UserContext(user_id="alice", tenant_id=t1))
    # The guide creates "invoices" again; DocEX refuses duplicate names, so reuse it.
    c.raises("a second 'invoices' basket in the same tenant is refused", ValueError,
             lambda: docEX1.create_basket("invoices"), "already exists")
    basket1 = docEX1.get_basket("invoices")
    assert basket1 is not None
    doc1 = basket1.add(str(sample(workdir, "invoice1.pdf")))

    docEX2 = DocEX(user_context=UserContext(user_id="bob", tenant_id=t2))
    basket2 = docEX2.create_basket("invoices")
    doc2 = basket2.add(str(sample(workdir, "invoice2.pdf")))

    baskets1, baskets2 = docEX1.list_baskets(), docEX2.list_baskets()
    c.check(f"{t1} lists only its own baskets", [b.id for b in baskets1] == [basket1.id],
            [b.name for b in baskets1])
    c.check(f"{t2} lists only its own baskets", [b.id for b in baskets2] == [basket2.id],
            [b.name for b in baskets2])
    c.check(f"{t1} cannot fetch {t2}'s basket by id", docEX1.get_basket(basket2.id) is None)
    c.check(f"{t2} cannot fetch {t1}'s document",
            basket2.get_document(doc1.id) is None and basket1.get_document(doc2.id) is None)
    c.check("each tenant's files live in its own directory",
            docEX1.files_dir != docEX2.files_dir
            and Path(docEX2.files_dir) in doc2.file_path.parents)
    c.check(f"{t1} has 2 documents, {t2} has 1",
            (len(basket1.list_documents()), len(basket2.list_documents())) == (2, 1))
    return docEX1, docEX2


def manager_management(c: Checks, t1: str, t2: str, docEX1: DocEX, docEX2: DocEX) -> None:
    c.section("Tenant database management")
    manager = TenantDatabaseManager()
    tenant_ids = manager.list_tenant_databases()
    print(f"  Active tenants: {tenant_ids}")
    c.check("both tenants have open connections", {t1, t2} <= set(tenant_ids))
    c.check(f"close_tenant_connection({t1!r}) reports it had one",
            manager.close_tenant_connection(t1) is True)
    active = manager.list_tenant_databases()
    c.check(f"{t1} is closed, {t2} stays open", t1 not in active and t2 in active, active)
    c.check(f"{t1} reconnects lazily with its data",
            [b.name for b in docEX1.list_baskets()] == ["invoices"]
            and t1 in manager.list_tenant_databases())

    def is_tenant_active(tenant_id: str) -> bool:  # "your logic" in the guide
        return tenant_id == t2

    for tenant_id in manager.list_tenant_databases():
        if not is_tenant_active(tenant_id):
            manager.close_tenant_connection(tenant_id)
    c.check("closing idle tenants keeps the active one",
            manager.list_tenant_databases() == [t2], manager.list_tenant_databases())
    manager.close_all_connections()
    c.check("close_all_connections() leaves none open", manager.list_tenant_databases() == [])
    c.check("data survives closing", len(docEX2.list_baskets()) == 1)


def missing_tenant(c: Checks) -> None:
    c.section("Always provide UserContext")
    c.raises("DocEX() without a tenant raises ValueError", ValueError, DocEX,
             "tenant_id is required")
    c.raises("UserContext without tenant_id raises ValueError", ValueError,
             lambda: DocEX(user_context=UserContext(user_id="alice")), "tenant_id is required")


def get_docex_for_user(user_id: str, tenant_id: str) -> DocEX:
    """The guide's validation helper, verbatim."""
    if not tenant_id or not tenant_id.isalnum():
        raise ValueError("Invalid tenant_id")
    user_context = UserContext(user_id=user_id, tenant_id=tenant_id)
    return DocEX(user_context=user_context)


def tenant_id_validation(c: Checks, t1: str) -> None:
    c.section("Tenant ID validation")
    c.check(f"get_docex_for_user('alice', {t1!r}) serves {t1}",
            get_docex_for_user("alice", t1).tenant_id == t1)
    for bad in ("", "tenant-1", "../etc", "tenant 1"):
        c.raises(f"helper refuses {bad!r}", ValueError, lambda b=bad: get_docex_for_user("x", b),
                 "Invalid tenant_id")
    # isalnum() lets upper case through; docex-ops refuses it before any SQL or file
    # operation (DocEX quotes schema names, so "Acme" and "acme" would differ).
    c.raises("'Acme' passes isalnum() but docex-ops refuses it", ValueError,
             lambda: get_docex_for_user("x", "Acme"), "invalid")


def guide_error_block(tenant_id: str | None, basket_name: str) -> str:
    """The guide's error-handling block; returns the branch it took."""
    try:
        user_context = UserContext(user_id="alice", tenant_id=tenant_id)
        docEX = DocEX(user_context=user_context)
        docEX.create_basket(basket_name)
    except ValueError as e:
        print(f"  Tenant context required: {e}")
        return "ValueError"
    except RuntimeError as e:
        print(f"  Database error: {e}")
        return "RuntimeError"
    return "success"


def unreachable(settings: Settings, workdir: Path) -> Settings:
    """The same configuration pointed at a database that cannot be reached."""
    if settings.db_type == "postgresql":
        return dataclasses.replace(settings, postgres=dataclasses.replace(
            settings.postgres, host="127.0.0.1", port=1))
    blocker = workdir / "not-a-directory"
    blocker.write_text("a file where the tenant directory should be\n")
    return dataclasses.replace(settings, sqlite=dataclasses.replace(
        settings.sqlite, storage_root=blocker,
        path_template=str(blocker / "tenant_{tenant_id}" / "docex.db")))


def error_handling(c: Checks, settings: Settings, t1: str, workdir: Path) -> None:
    c.section("Error handling")
    c.check("a valid tenant and a new basket succeed",
            guide_error_block(t1, "receipts") == "success")
    c.check("a missing tenant_id takes the ValueError branch",
            guide_error_block(None, "receipts") == "ValueError")
    TenantDatabaseManager.reset()
    TenantDatabaseManager(unreachable(settings, workdir))
    try:
        c.check("an unreachable database takes the RuntimeError branch",
                guide_error_block(t1, "receipts") == "RuntimeError")
    finally:
        TenantDatabaseManager.reset()
        TenantDatabaseManager(settings)


def check_audit_trail(c: Checks, settings: Settings, t1: str, t2: str) -> None:
    c.section("Audit trail (all operations logged with tenant context)")
    if settings.audit_file is None:
        print("  skipped: no logging.audit_file in the configuration")
        return
    events = [e for e in audit_trail.read_events(settings.audit_file) if e.tenant in (t1, t2)]
    adds = [(e.tenant, e.operator) for e in events if e.action == "document.add"
            and e.outcome == audit_trail.OK]
    c.check("one document.add line per stored document, with tenant and user",
            sorted(adds) == sorted([(t1, "alice")] * 2 + [(t2, "bob")]), adds)
    failed = [e for e in events
              if e.action == "tenant.provision" and e.outcome == audit_trail.FAILED]
    c.check("the unreachable database was recorded as a failed provisioning",
            [e.tenant for e in failed] == [t1])
    print(f"  {len(events)} lines in {settings.audit_file}")


def default_settings(workdir: Path) -> Settings:
    """SQLite tenants and an audit file inside ``workdir``."""
    return settings_from_mapping({
        "security": {"multi_tenancy_model": "database_level", "tenant_database_routing": True},
        "database": {"type": "sqlite", "sqlite": {
            "path_template": str(workdir / "storage" / "tenant_{tenant_id}" / "docex.db")}},
        "logging": {"audit_file": str(workdir / "audit.jsonl")},
    }, "<example: SQLite in a temporary directory>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="DocEX config file (default: SQLite in a temp dir)")
    parser.add_argument("--workdir", type=Path, help="where sample files (and SQLite) go")
    parser.add_argument("--tenant-prefix", default="",
                        help="prefix for the tenant ids, to run twice against one database")
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="docex-ops-example-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        settings = load_settings(args.config) if args.config else default_settings(workdir)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    t1, t2 = f"{args.tenant_prefix}tenant1", f"{args.tenant_prefix}tenant2"
    os.environ.setdefault("USER", "example")
    TenantDatabaseManager.reset()
    TenantDatabaseManager(settings)
    print(f"docex-ops multi-tenancy example on {settings.describe()} (work dir {workdir})")
    checks = Checks()
    try:
        basic_usage(checks, t1, workdir)
        docEX1, docEX2 = multiple_tenants(checks, t1, t2, workdir)
        manager_management(checks, t1, t2, docEX1, docEX2)
        missing_tenant(checks)
        tenant_id_validation(checks, t1)
        error_handling(checks, settings, t1, workdir)
        check_audit_trail(checks, settings, t1, t2)
    except (ValueError, RuntimeError, OSError) as exc:
        checks.check("scenario ran to the end", False, f"{type(exc).__name__}: {exc} "
                     "(on a used database, pass --tenant-prefix)")
    finally:
        TenantDatabaseManager.reset()
    print(f"\n{checks.passed} checks passed, {len(checks.failed)} failed")
    for what in checks.failed:
        print(f"  FAILED: {what}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
