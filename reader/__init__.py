"""The reference reader."""
