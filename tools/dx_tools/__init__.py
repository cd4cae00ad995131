"""dx_tools."""
