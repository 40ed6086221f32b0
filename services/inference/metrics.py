"""Inference's own metrics, per model and version (beside the kit's per-route HTTP metrics):
what KServe's request_predict_seconds and MLServer's model_infer_request_success/failure say.

Labels are only ever names the registry knows: a request for a model that does not exist is
counted by route (daprml_http_requests_total), never under the name a client made up.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.metrics import LATENCY_BUCKETS

BATCH_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10_000)


class InferenceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.requests = Counter(
            "daprml_inference_requests",
            "Predict and infer requests for a loaded model version, by outcome (success, refused: the "
            "client's fault, failed: the server's)",
            ["model", "version", "outcome"],
            registry=registry,
        )
        self.rows = Counter("daprml_inference_rows", "Rows predicted", ["model", "version"], registry=registry)
        self.predict = Histogram(
            "daprml_inference_predict_duration_seconds",
            "Time of one predict call of the runtime (a batch of requests, when batching joined them)",
            ["model", "version", "runtime"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch = Histogram(
            "daprml_inference_batch_rows",
            "Rows in one predict call (several requests' rows when batching joined them)",
            ["model", "version"],
            buckets=BATCH_ROWS,
            registry=registry,
        )
        self.duration = Histogram(
            "daprml_inference_request_duration_seconds",
            "Time of one predict or infer request for a known model version, as the data plane sees it: "
            "finding the model, decoding, queueing and predicting (not the HTTP answer's encoding)",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue = Histogram(
            "daprml_inference_queue_duration_seconds",
            "Time a request waited in the batching queue before its predict call began (batched models only)",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.loaded = Gauge("daprml_inference_loaded_models", "Model versions held in memory", registry=registry)
        self.load_failures = Counter(
            "daprml_inference_load_failures",
            "Model files refused or not fetched when loading (an ONNX file refused counts too: scikit-learn serves)",
            ["model", "version", "runtime"],
            registry=registry,
        )
        self.swaps = Counter(
            "daprml_inference_alias_swaps",
            "Times an alias served here switched to another version (hot swap)",
            ["model", "alias"],
            registry=registry,
        )

        # The prediction log's (prediction_log.py), per model only: a version label would multiply
        # series for numbers an operator reads as totals.
        self.captured_calls = Counter(
            "daprml_inference_captured_calls",
            "Prediction calls sampled for capture, by what became of them: published, dropped (the "
            "buffer was full, or the entry could not be made), failed (the bus refused the bulk)",
            ["model", "outcome"],
            registry=registry,
        )
        self.captured_rows = Counter(
            "daprml_inference_captured_rows",
            "Records of the calls sampled for capture, by what became of them: published, dropped, "
            "failed (as their call), truncated (past the per-call bound: never captured)",
            ["model", "outcome"],
            registry=registry,
        )

        # Traffic (traffic.py, shadows.py): canaries that could not serve, and each shadow's copies.
        self.canary_fallbacks = Counter(
            "daprml_inference_canary_fallbacks",
            "Requests routed to a canary version that could not be loaded, served by the champion instead",
            ["model", "version"],
            registry=registry,
        )
        self.shadow_requests = Counter(
            "daprml_inference_shadow_requests",
            "Requests copied to a shadow version, by outcome: done, failed (it raised or timed out), dropped "
            "(too many copies pending)",
            ["model", "version", "outcome"],
            registry=registry,
        )
        self.shadow_records = Counter(
            "daprml_inference_shadow_records",
            "Records a shadow version answered beside the champion (or canary) that served them",
            ["model", "version"],
            registry=registry,
        )
        self.shadow_agreed = Counter(
            "daprml_inference_shadow_agreed_records",
            "Records a shadow classifier gave the same class as the version that served them "
            "(agreement: this over daprml_inference_shadow_records_total)",
            ["model", "version"],
            registry=registry,
        )
        self.shadow_abs_error = Counter(
            "daprml_inference_shadow_abs_difference",
            "Sum over records of |shadow - served| for regressors "
            "(mean: this over daprml_inference_shadow_records_total)",
            ["model", "version"],
            registry=registry,
        )
        self.shadow_seconds = Histogram(
            "daprml_inference_shadow_seconds",
            "How long a shadow version took to answer a copy (decode, predict)",
            ["model", "version"],
            registry=registry,
        )

    def predicted(self, model: str, version: int, runtime: str, rows: int, seconds: float) -> None:
        self.predict.labels(model, str(version), runtime).observe(seconds)
        self.batch.labels(model, str(version)).observe(rows)
