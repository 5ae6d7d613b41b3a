"""cmlib."""
