"""The virtual meter."""
