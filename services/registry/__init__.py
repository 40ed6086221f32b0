"""Registry: model versions, lineage, aliases, promotion and rollback."""
