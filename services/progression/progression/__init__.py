"""progression."""
