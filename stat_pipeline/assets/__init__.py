"""Asset families: one module each, SQL next to it."""
