"""The human ceiling: the second rater's mask scored against the primary reference."""
