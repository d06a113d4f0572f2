"""TenantDatabaseManager: every connection (tenant pools, the connection budget per server)
and the topology's answers about where tenants live.
"""
