"""Dead letters: the events a subscriber gave up on, for admins to see, replay or discard.
models.py holds what is kept and shown, service.py keeps them, api.py is the admins' routes."""
