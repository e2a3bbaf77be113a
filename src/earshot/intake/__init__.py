"""intake domain."""
