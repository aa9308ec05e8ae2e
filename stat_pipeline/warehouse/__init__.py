"""Warehouse: the PostgreSQL side of the pipeline (schema, migrations, embedded server)."""
