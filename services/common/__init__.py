"""The small library the services share: settings base, events, the Dapr adapter, app helpers."""
