"""registers."""
