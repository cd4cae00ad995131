"""nomination."""
