"""The registry's rules, pure: version numbering, aliases and their history, promotion."""
