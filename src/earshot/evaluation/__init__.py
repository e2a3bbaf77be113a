"""evaluation domain."""
