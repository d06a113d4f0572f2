"""DocEX's tables: the head MetaData (head.py), the frozen pre-2.9 history (history.py) and
head DDL rendering per kind (ddl.py).
"""
