"""Every event daprml sends: topic names, CloudEvent types and payload models, in one place.

Events travel as structured CloudEvents (application/cloudevents+json), so Dapr passes them
through as they are and a subscriber in any language reads the same envelope. Subscribers in
other languages get the rest from `events.schema.json` beside this file: every event's type,
topic and payload JSON schema, written by `python -m services.common.events` (a unit test
fails when the file and the models differ).
"""

import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.common.contracts.datasets import DATASET_NAME
from services.common.contracts.models import Traffic
from services.common.contracts.monitoring import (
    MAX_LATENCY_BUCKETS,
    MAX_SERVING_VERSIONS,
    VersionServing,
    is_prediction_id,
)

CLOUDEVENTS_JSON = "application/cloudevents+json"


class Topic(StrEnum):
    DATASET_VERSIONS = "dataset-versions"
    MODEL_VERSIONS = "model-versions"
    MODEL_ALIASES = "model-aliases"
    ROUNDTRIP = "roundtrip"
    PREDICTIONS = "predictions"
    INSTANCES = "instances"
    MODEL_HISTORY = "model-history"
    MODEL_DRIFT = "model-drift"
    MODEL_TRAFFIC = "model-traffic"
    SERVING_STATS = "serving-stats"


# Where an event goes when a subscriber gives up on it: one topic per deployment (with the
# deployment's prefix), named by every subscription as its deadLetterTopic. Dapr moves an event
# there when its handler answers DROP (invalid) or still fails after the delivery retries of
# the resiliency policy; it carries the event as it was published, not why it failed (the
# subscriber logs that, with the event id). The gateway keeps the latest ones.
DEAD_LETTERS = "dead-letters"


def dead_letter_topic(prefix: str = "") -> str:
    """The deployment's dead-letter topic; `prefix` is settings.topic_prefix."""
    return f"{prefix}{DEAD_LETTERS}"


class EventType(StrEnum):
    DATASET_VERSION_COMMITTED = "io.daprml.dataset.version.committed.v1"
    MODEL_VERSION_REGISTERED = "io.daprml.model.version.registered.v1"
    MODEL_ALIAS_CHANGED = "io.daprml.model.alias.changed.v1"
    ROUNDTRIP_PING = "io.daprml.roundtrip.ping.v1"
    PREDICTION_LOGGED = "io.daprml.inference.prediction.logged.v1"
    INSTANCE_HEARTBEAT = "io.daprml.instance.heartbeat.v1"
    MODEL_HISTORY_RECORDED = "io.daprml.model.history.recorded.v1"
    MODEL_DRIFT_DETECTED = "io.daprml.model.drift.detected.v1"
    MODEL_TRAFFIC_CHANGED = "io.daprml.model.traffic.changed.v1"
    INFERENCE_SERVING_STATS = "io.daprml.inference.serving.stats.v1"


class DatasetVersionCommitted(BaseModel):
    """A dataset version was committed: its rows and manifest are stored and will not change."""

    dataset: str = Field(pattern=DATASET_NAME)
    version: int = Field(ge=1)
    row_count: int = Field(ge=0)
    schema_hash: str
    profile: dict[str, Any] = Field(default_factory=dict)


class ModelVersionRegistered(BaseModel):
    """A model version was registered: its artifact, lineage and metrics are stored."""

    model: str = Field(pattern=DATASET_NAME)
    version: int = Field(ge=1)
    dataset: str = Field(pattern=DATASET_NAME)
    dataset_version: int = Field(ge=1)
    estimator: str
    job_id: str
    artifact_sha256: str
    metrics: dict[str, float] = Field(default_factory=dict)


class ModelAliasChanged(BaseModel):
    """An alias of a model (champion, challenger, ...) now names another version, or none."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    model: str = Field(pattern=DATASET_NAME)
    alias: str
    # `from` and `to` on the wire; Python keeps `from` for itself.
    from_version: int | None = Field(alias="from")
    to_version: int | None = Field(alias="to")
    reason: str  # what moved it: promotion, api, rollback


class ModelTrafficChanged(BaseModel):
    """A model's traffic table (canary weights, shadows) changed: every inference replica asks the
    registry for it again (the event only says which model; the registry's answer is the current one)."""

    model: str = Field(pattern=DATASET_NAME)
    traffic: Traffic
    reason: str = Field(max_length=2000)


class RoundtripPing(BaseModel):
    """Sent by the round trip check: the receiver reads the blob the sender wrote."""

    run_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    # The receiver reads this key from the blob store: only the round trip's own keys qualify.
    blob_key: str = Field(pattern=r"^roundtrip/[A-Za-z0-9_-]{1,64}\.json$")
    sent_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class PredictionLogged(BaseModel):
    """A prediction call inference served, sampled for monitoring: what went in and what came
    out, record by record, with each record's prediction id (the monitor keeps them as the
    model's inference table)."""

    model: str = Field(pattern=DATASET_NAME)
    version: int = Field(ge=1)
    runtime: str = Field("", max_length=64)  # sklearn or onnx; "" from replicas before it was sent
    request_id: str
    at: datetime
    records: int = Field(ge=1)  # records in the call, all of them
    # The first records only when the call had more than a replica captures of one call
    # (records says how many there were): each with its id, inputs and prediction.
    prediction_ids: list[str] = Field(default_factory=list)  # empty from replicas before ids
    inputs: list[dict[str, Any]]
    predictions: list[Any]  # one per row of inputs
    # Each row's class probabilities in the order of `classes` (classifiers that give them).
    classes: list[Any] | None = None
    probabilities: list[list[float | None]] | None = None
    warnings: list[list[str]] | None = None  # each row's warnings, when any row had one
    latency_ms: float = Field(ge=0)
    # A shadow version's answers to a copy of a call (its traffic table's shadows): `version` is
    # the shadow's, the prediction ids those of the answer the caller got from another version.
    shadow: bool = False

    @model_validator(mode="after")
    def _row_aligned(self) -> Self:
        rows = len(self.inputs)
        if len(self.predictions) != rows:
            raise ValueError(f"{len(self.predictions)} predictions for {rows} rows of inputs")
        for name in ("prediction_ids", "probabilities", "warnings"):
            values = getattr(self, name)
            if values and len(values) != rows:
                raise ValueError(f"{len(values)} {name} for {rows} rows of inputs")
        bad = [i for i in self.prediction_ids if not is_prediction_id(i)]
        if bad:
            raise ValueError(f"not prediction ids: {bad[:3]}")
        if self.probabilities is not None and not self.classes:
            raise ValueError("probabilities need the classes they are in the order of")
        return self


class ModelHistoryRecorded(BaseModel):
    """An entry was added to a model's history: an alias moved, a policy changed, monitoring
    acted. The history is append-only; `seq` is the entry's place in it (1 first)."""

    model: str = Field(pattern=DATASET_NAME)
    seq: int = Field(ge=1)
    at: datetime
    actor: str = Field(max_length=200)  # the key's name, or the app id of the service that acted
    action: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")  # alias.moved, monitoring.policy, ...
    reason: str = Field("", max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict)


class FeatureDrift(BaseModel):
    """How one feature (or the output) of a window of captured inputs differs from training's."""

    psi: float | None = Field(None, ge=0)  # population stability index; None: too few rows
    missing_share: float = Field(0, ge=0, le=1)
    unseen_share: float = Field(0, ge=0, le=1)  # categories training never saw
    drifted: bool = False


class ModelDriftDetected(BaseModel):
    """A monitoring check found a model version's inputs (or its predictions) drifted beyond
    the model's threshold."""

    model: str = Field(pattern=DATASET_NAME)
    version: int = Field(ge=1)
    check_id: str = Field(min_length=1, max_length=200)
    window_from: datetime
    window_to: datetime
    rows: int = Field(ge=0)
    threshold: float = Field(ge=0)
    features: dict[str, FeatureDrift]  # every feature checked; `drifted` marks those over the threshold
    output: FeatureDrift | None = None  # the predicted class balance against training's


class InstanceHeartbeat(BaseModel):
    """One instance of a service (a replica, with its own sidecar) is alive: sent every
    `interval_s` through its sidecar on the replica pub/sub component, so that each gateway
    replica hears every instance; an instance whose heartbeats stop is down (or its sidecar is).
    `leaving` says it is stopping on purpose."""

    app_id: str = Field(min_length=1, max_length=128)
    # Stable across restarts of the same replica: the host and the sidecar's port.
    instance: str = Field(min_length=1, max_length=256)
    started_at: datetime
    # When it was sent: a gateway replica that starts reads the topic from its start, and an old
    # heartbeat must not make a dead instance look alive.
    at: datetime
    interval_s: float = Field(gt=0, le=3600)
    leaving: bool = False


class ServingStats(BaseModel):
    """One inference replica's serving counters per model version, cumulative since it started
    (requests answered, failed, refused, shadow copies, latency): sent every
    DAPRML_SERVING_STATS_S when something changed (and now and then anyway, to say it lives).
    The latest event of an instance holds all it served: a lost or repeated one is harmless."""

    # Unique per run of a replica: its host, its sidecar's port and when it started (a replica
    # that restarts counts from zero again, as a new instance).
    instance: str = Field(min_length=1, max_length=300)
    started_at: datetime
    at: datetime  # when it was sent: of two events of an instance, the later one wins
    latency_bounds_ms: list[float] = Field(min_length=1, max_length=MAX_LATENCY_BUCKETS)  # the buckets' `le` bounds
    versions: list[VersionServing] = Field(max_length=MAX_SERVING_VERSIONS)
    left_out: int = Field(0, ge=0)  # versions it served that did not fit (the least recently served)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.at < self.started_at:
            raise ValueError("sent before the instance started")
        if len({(v.model, v.version) for v in self.versions}) != len(self.versions):
            raise ValueError("a model version appears twice")
        buckets = len(self.latency_bounds_ms) + 1
        if any(v.latency_counts and len(v.latency_counts) != buckets for v in self.versions):
            raise ValueError(f"latency counts have one count per bound and one more ({buckets})")
        return self


# One topic and one payload model per event type.
ROUTES: dict[EventType, tuple[Topic, type[BaseModel]]] = {
    EventType.DATASET_VERSION_COMMITTED: (Topic.DATASET_VERSIONS, DatasetVersionCommitted),
    EventType.MODEL_VERSION_REGISTERED: (Topic.MODEL_VERSIONS, ModelVersionRegistered),
    EventType.MODEL_ALIAS_CHANGED: (Topic.MODEL_ALIASES, ModelAliasChanged),
    EventType.ROUNDTRIP_PING: (Topic.ROUNDTRIP, RoundtripPing),
    EventType.PREDICTION_LOGGED: (Topic.PREDICTIONS, PredictionLogged),
    EventType.INSTANCE_HEARTBEAT: (Topic.INSTANCES, InstanceHeartbeat),
    EventType.MODEL_HISTORY_RECORDED: (Topic.MODEL_HISTORY, ModelHistoryRecorded),
    EventType.MODEL_DRIFT_DETECTED: (Topic.MODEL_DRIFT, ModelDriftDetected),
    EventType.MODEL_TRAFFIC_CHANGED: (Topic.MODEL_TRAFFIC, ModelTrafficChanged),
    EventType.INFERENCE_SERVING_STATS: (Topic.SERVING_STATS, ServingStats),
}


# A use case that consumes an event: it gets the CloudEvent's attributes and its validated payload.
EventHandler = Callable[[dict[str, Any], Any], Awaitable[None]]


class InvalidEvent(ValueError):
    """An event that no retry can make valid: wrong type, malformed envelope or payload."""


# Events every replica of a subscriber hears itself (each inference replica swaps its model,
# each gateway replica counts the instances): they travel on the replica pub/sub component
# (settings.replica_pubsub: a queue per replica) under topics of their own, replica_topic_of.
# Never under a topic `pubsub` uses too: a broker may declare a topic with its component's
# settings (RabbitMQ: a durable exchange for `pubsub`, a transient one for the replicas) and
# refuse whichever comes second. Alias moves and traffic changes also go on `pubsub`, where
# the notifier and the monitor hear each once; heartbeats go to the replicas only.
EVERY_REPLICA = frozenset(
    {EventType.MODEL_ALIAS_CHANGED, EventType.MODEL_TRAFFIC_CHANGED, EventType.INSTANCE_HEARTBEAT}
)
REPLICAS_ONLY = frozenset({EventType.INSTANCE_HEARTBEAT})
REPLICA_SUFFIX = "-replicas"
# What a replica gives up on: nothing keeps it (each replica would give up on its own copy, and
# its reconcile with the registry repairs a missed hint); naming it bounds the redeliveries.
REPLICA_DEAD_LETTERS = f"{DEAD_LETTERS}{REPLICA_SUFFIX}"


def topic_of(event_type: EventType, prefix: str = "") -> str:
    """The topic an event type travels on; `prefix` is the deployment's (settings.topic_prefix)."""
    return f"{prefix}{ROUTES[event_type][0]}"


def replica_topic_of(event_type: EventType, prefix: str = "") -> str:
    """The topic an event type of EVERY_REPLICA travels on through the replica pub/sub component."""
    if event_type not in EVERY_REPLICA:
        raise ValueError(f"{event_type} is not sent to every replica")
    return f"{topic_of(event_type, prefix)}{REPLICA_SUFFIX}"


def channels(event_type: EventType, prefix: str = "") -> list[tuple[bool, str]]:
    """Where a publisher sends an event: (through the replica component?, topic) for each copy."""
    once = [] if event_type in REPLICAS_ONLY else [(False, topic_of(event_type, prefix))]
    every = [(True, replica_topic_of(event_type, prefix))] if event_type in EVERY_REPLICA else []
    return once + every


def all_topics() -> list[str]:
    """Every topic daprml uses, without the deployment's prefix (a broker that needs each made
    beforehand, like NATS JetStream's streams, makes these)."""
    once = [topic_of(t) for t in ROUTES if t not in REPLICAS_ONLY]
    return [*once, *(replica_topic_of(t) for t in EVERY_REPLICA), DEAD_LETTERS, REPLICA_DEAD_LETTERS]


def encode(
    event_type: EventType, source: str, payload: BaseModel, subject: str | None = None, event_id: str | None = None
) -> bytes:
    """Builds the structured CloudEvent for a payload; its model must match the event type."""
    model = ROUTES[event_type][1]
    if not isinstance(payload, model):
        raise TypeError(f"{event_type} carries {model.__name__}, not {type(payload).__name__}")
    attributes: dict[str, Any] = {
        "type": str(event_type),
        "source": source,
        "datacontenttype": "application/json",
    }
    if subject:
        attributes["subject"] = subject
    if event_id:
        attributes["id"] = event_id
    event = CloudEvent(attributes=attributes, data=payload.model_dump(mode="json"))
    return to_structured_event(event).body


def decode(envelope: bytes | dict[str, Any], expected: EventType) -> tuple[dict[str, Any], BaseModel]:
    """Reads a delivered CloudEvent envelope: its attributes and the validated payload."""
    if isinstance(envelope, (bytes, bytearray)):
        try:
            envelope = json.loads(envelope)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEvent(f"event body is not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise InvalidEvent("event body is not a JSON object")
    if envelope.get("type") != str(expected):
        raise InvalidEvent(f"expected event type {expected}, got {envelope.get('type')!r}")
    data = envelope.get("data")
    if isinstance(data, str):
        # Some publishers send the payload as a JSON string rather than an object.
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            raise InvalidEvent("event data is a string that is not JSON") from None
    try:
        payload = ROUTES[expected][1].model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {expected} payload: {exc.errors(include_url=False)}") from None
    attributes = {k: v for k, v in envelope.items() if k not in ("data", "data_base64")}
    return attributes, payload


SCHEMA_FILE = Path(__file__).with_name("events.schema.json")


def json_schemas() -> dict[str, Any]:
    """Every event as a subscriber in any language needs it: its CloudEvent type, its topic
    (without the deployment's prefix) and its payload's JSON schema (the wire names: `from`,
    not `from_version`)."""
    return {
        "$comment": "Generated by `python -m services.common.events` from services/common/events.py; do not edit.",
        "envelope": {
            "specversion": "1.0",
            "contenttype": CLOUDEVENTS_JSON,
            "payload": "the CloudEvent's `data`: a JSON object (or a JSON string holding one)",
            "dead_letter_topic": DEAD_LETTERS,
            "dead_letter_comment": "every subscription names it (after the deployment's topic prefix) as its "
            "deadLetterTopic: Dapr moves there what a handler DROPs or keeps failing past its retries",
            "every_replica_comment": "an event with every_replica_topic is also published there on the replica "
            "pub/sub component (a queue per replica): subscribe there to hear it in every replica; those "
            "subscriptions name every_replica_dead_letter_topic",
            "every_replica_dead_letter_topic": REPLICA_DEAD_LETTERS,
        },
        "events": {
            str(event_type): {
                "type": str(event_type),
                **({} if event_type in REPLICAS_ONLY else {"topic": str(topic)}),
                **({"every_replica_topic": replica_topic_of(event_type)} if event_type in EVERY_REPLICA else {}),
                "schema": model.model_json_schema(by_alias=True),
            }
            for event_type, (topic, model) in ROUTES.items()
        },
    }


def schema_text() -> str:
    return json.dumps(json_schemas(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    """Writes the schemas to services/common/events.schema.json (or the path given)."""
    target = Path(argv[0]) if argv else SCHEMA_FILE
    target.write_text(schema_text())
    print(f"events: {len(ROUTES)} event schemas written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
