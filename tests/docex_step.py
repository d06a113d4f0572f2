"""Run real DocEX (the ``docex`` package, 2.9.9) for one tenant, in its own process.

DocEX is a process singleton that refuses to switch tenants, so the interop
tests never import it: they run this script with a temporary HOME (DocEX reads
``~/.docex/config.yaml``) and cwd (DocEX resolves its relative paths there)::

    python docex_step.py SCRIPT.json RESULT.json

SCRIPT is ``{"tenant": id or null, "psycopg2": bool, "steps": [step, ...]}``; each
step is one of

    {"op": "setup", "config": {...}}       DocEX.setup(**config): writes DocEX's config file
    {"op": "create_basket", "name": ..., "description": ...}
    {"op": "add", "basket": name, "path": ..., "metadata": {...}}
    {"op": "dump"}                          every basket, document, content and metadata

RESULT gets one entry per step, in order, as JSON (document content base64).
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any


def use_psycopg2_for_bare_postgresql_urls() -> None:
    """DocEX 2.9.9 builds bare ``postgresql://`` URLs, which SQLAlchemy 2.1 maps to
    psycopg 3; with only psycopg2 installed (DocEX's own ``postgres`` extra) DocEX
    cannot connect at all ("No module named 'psycopg'"). This process is the
    deployment, not DocEX: it names psycopg2 as the default PostgreSQL driver, the
    fix a DocEX 2.9.9 deployment on SQLAlchemy 2.1 needs. DocEX itself is untouched."""
    from sqlalchemy.dialects import registry

    registry.register("postgresql", "sqlalchemy.dialects.postgresql.psycopg2",
                      "PGDialect_psycopg2")


def document_view(docex: Any, document: Any) -> dict[str, Any]:
    details = document.get_details()
    found = docex.get_document(document.id)
    return {
        "id": details.id, "name": details.name, "path": details.path,
        "content_type": details.content_type, "document_type": details.document_type,
        "size": details.size, "checksum": details.checksum, "status": details.status,
        "metadata": document.get_metadata(),
        "content": base64.b64encode(document.get_content()).decode("ascii"),
        "found_by_id": found is not None and found.id == document.id,
    }


def dump(docex: Any) -> list[dict[str, Any]]:
    baskets = []
    for basket in docex.list_baskets():
        by_name = docex.get_basket(basket_name=basket.name)
        baskets.append({
            "id": basket.id, "name": basket.name, "description": basket.description,
            "storage_config": basket.storage_config,
            "found_by_name": by_name is not None and by_name.id == basket.id,
            "documents": [document_view(docex, d) for d in basket.list_documents()],
        })
    return baskets


def run(script: dict[str, Any]) -> list[Any]:
    if script.get("psycopg2"):
        use_psycopg2_for_bare_postgresql_urls()
    from docex import DocEX
    from docex.context import UserContext

    results: list[Any] = []
    docex = None
    for step in script["steps"]:
        if step["op"] == "setup":
            DocEX.setup(**step["config"])
            results.append(None)
            continue
        if docex is None:
            docex = DocEX(user_context=UserContext(user_id="docex-user",
                                                   tenant_id=script["tenant"]))
        if step["op"] == "create_basket":
            basket = docex.create_basket(step["name"], step.get("description"))
            results.append({"id": basket.id, "name": basket.name})
        elif step["op"] == "add":
            basket = docex.get_basket(basket_name=step["basket"])
            document = basket.add(step["path"], metadata=step.get("metadata"))
            results.append(document_view(docex, document))
        elif step["op"] == "dump":
            results.append(dump(docex))
        else:
            raise ValueError(f"unknown step {step['op']!r}")
    return results


def main(script_path: str, result_path: str) -> None:
    with open(script_path, encoding="utf-8") as handle:
        script = json.load(handle)
    results = run(script)
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(results, handle, default=str)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
