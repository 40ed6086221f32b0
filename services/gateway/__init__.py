"""Gateway: the public door (authentication, roles, routing) and the stack's status."""
