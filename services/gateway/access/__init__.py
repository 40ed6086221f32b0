"""Who may call what: the gatekeeper that admits a call by its key's roles and rate
(service.py, with the token buckets of ratelimit.py), and what the gateway's routes give away
to a caller without a key (open_routes.py). The guards routes declare (READ, ADMIN, ...) are in
services/gateway/deps.py with every other dependency."""
