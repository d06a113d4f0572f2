"""``docex-ops doctor``: the preflight a DBA runs before a deploy.

One small module per check, listed in run order in ``registry.py``; ``run.py`` runs the
checks of the configured kind and never raises: a check that breaks is a FAIL row.
"""
