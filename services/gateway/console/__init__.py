"""The web console and the API docs page: static files (static/), served by name from a list
made at start-up (service.py) under a strict Content-Security-Policy (api.py)."""
