"""Compatibility layers: the small DocEX-compatible document API."""
