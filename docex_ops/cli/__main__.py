"""``python -m docex_ops.cli``: the same as the ``docex-ops`` console script."""

from docex_ops.cli import main

main()
