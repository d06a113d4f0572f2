"""move."""
