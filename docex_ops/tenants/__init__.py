"""Tenant lifecycle: list, show, provision, drop (lifecycle.py) and per-tenant login roles
(roles.py).
"""
