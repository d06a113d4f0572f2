"""A small DocEX-compatible document API for docex-ops' examples, tests and checks.

``DocEX(user_context=...)`` -> ``create_basket`` / ``list_baskets`` /
``get_basket`` -> ``basket.add`` / ``list_documents`` / ``get_document`` ->
``document.read()``. It writes exactly the rows and formats DocEX 2.9.9
writes, so DocEX can read a tenant that docex-ops filled.
"""

from docex_ops.documents.basket import Basket, Document
from docex_ops.documents.client import DocEX

__all__ = ["Basket", "DocEX", "Document"]
