"""Training jobs' words, as training's API and the gateway in front of it both check them."""

JOB_ID = r"^[a-z0-9][a-z0-9_-]{0,200}$"  # as a job's submission answers it
# A job's statuses as training reports them, upper-case; a filter may name them in either case.
JOB_STATUSES = "pending|running|completed|failed|canceled|suspended"
