"""The stack's status: which services answer through Dapr and which of their instances are up
(instances.py, from their heartbeats), and the round trip check across the stack."""
