"""Moving a tenant between PostgreSQL servers (online by logical replication, or offline),
verified, journaled, and rebalancing.
"""
