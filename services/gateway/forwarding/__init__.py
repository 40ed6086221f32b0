"""The public routes that forward to the internal services, one module per service behind them
(ingestion_api.py, training_api.py, registry_api.py, inference_api.py): each route a named
operation of that service, its parameters validated here by the rules the service applies.
upstream.py is the raw forward they all use, through Dapr; breaker.py holds calls back from a
service that does not answer."""
