"""dx_shared."""
