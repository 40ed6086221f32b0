"""The registry's rules, pure: version numbering, aliases and their history, promotion, and
what the routes take and answer (views.py)."""
