"""The configuration: DocEX's file format loaded and validated into one frozen Settings
(settings.py), with value parsing (values.py), file lookup (sources.py) and the sections
of features (backup, isolation, servers).
"""
