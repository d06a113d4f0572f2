"""Scratch objects a killed operation left behind (docex$ schemas and roles, .docex-
files): found, judged held or not, removed.
"""
