"""Configuration: settings (settings.py), value parsing (values.py), file lookup
(sources.py) and the sections of features (backup, isolation, servers)."""
