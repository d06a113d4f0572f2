#!/usr/bin/env python3
"""Add a few documents to each named tenant through docex-ops' DocEX-compatible API.

    python examples/add_documents.py acme globex [--config FILE]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from docex_ops import TenantDatabaseManager, UserContext
from docex_ops.compat.docex import DocEX
from docex_ops.config.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tenants", nargs="+")
    parser.add_argument("--config")
    args = parser.parse_args()
    TenantDatabaseManager(load_settings(args.config))
    with tempfile.TemporaryDirectory() as tmp:
        for tenant in args.tenants:
            docex = DocEX(user_context=UserContext(user_id="quickstart", tenant_id=tenant))
            basket = docex.create_basket("invoices", description=f"{tenant}'s invoices")
            for number in (1, 2):
                source = Path(tmp) / f"invoice-{tenant}-{number}.txt"
                source.write_text(f"Invoice {number} for {tenant}\n")
                basket.add(str(source), metadata={"number": number})
            names = [d.name for d in basket.list_documents()]
            print(f"tenant {tenant}: basket {basket.name!r} holds {names}")
    TenantDatabaseManager().close_all_connections()


if __name__ == "__main__":
    main()
