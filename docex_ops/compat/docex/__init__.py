"""A small DocEX-compatible document API for docex-ops' examples, tests and checks.

``DocEX(user_context=...)`` -> ``create_basket`` / ``list_baskets`` /
``get_basket`` -> ``basket.add`` / ``list_documents`` / ``get_document`` ->
``document.read()``. It writes exactly the rows and formats DocEX 2.9.9
writes, so DocEX can read a tenant that docex-ops filled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docex_ops import lazy_exports

if TYPE_CHECKING:
    from docex_ops.compat.docex.basket import Basket, Document
    from docex_ops.compat.docex.client import DocEX

__all__ = [
    "Basket", "DocEX", "Document"
]
__getattr__ = lazy_exports(__name__, {
    "Basket": "docex_ops.compat.docex.basket",
    "DocEX": "docex_ops.compat.docex.client",
    "Document": "docex_ops.compat.docex.basket",
})
