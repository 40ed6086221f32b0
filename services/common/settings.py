"""The settings every service shares; each service subclasses it with its own fields."""

import sys
from typing import Self

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


def env(name: str, *fallbacks: str) -> AliasChoices:
    """Reads DAPRML_<NAME> first, then the given fallbacks (e.g. variables the dapr CLI sets)."""
    return AliasChoices(f"DAPRML_{name.upper()}", *fallbacks)


class ServiceSettings(BaseSettings):
    # Attribute docstrings become field descriptions: each setting documents itself.
    model_config = SettingsConfigDict(
        env_prefix="DAPRML_", extra="ignore", populate_by_name=True, use_attribute_docstrings=True
    )

    @classmethod
    def load(cls) -> Self:
        """Settings from the environment; a bad value ends the process with one line per problem
        naming the variable, rather than a traceback."""
        try:
            return cls()
        except ValidationError as exc:
            problems = "; ".join(
                f"DAPRML_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            sys.exit(f"{cls.__module__}: invalid settings: {problems}")

    app_id: str = Field("service", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    host: str = "127.0.0.1"
    """Address the HTTP server binds to."""
    port: int = Field(8080, validation_alias=env("port", "APP_PORT"))
    """Port the HTTP server listens on (the dapr CLI passes it as APP_PORT)."""
    metrics_port: int | None = Field(None, ge=1, le=65535)
    """Port /metrics is served on (Prometheus' text format), on `host`; None: not served. Never the app port."""
    access_log: bool = True
    """Whether the HTTP server logs every request it answers (off: errors and warnings still are)."""
    dapr_host: str = "127.0.0.1"
    """Address of this service's sidecar."""
    dapr_http_port: int = Field(3500, validation_alias=env("dapr_http_port", "DAPR_HTTP_PORT"))
    """The sidecar's HTTP API port (the dapr CLI passes it as DAPR_HTTP_PORT)."""
    dapr_grpc_port: int = Field(50001, validation_alias=env("dapr_grpc_port", "DAPR_GRPC_PORT"))
    """The sidecar's gRPC API port (the dapr CLI passes it as DAPR_GRPC_PORT)."""
    sidecar_timeout_s: float = 5.0
    """How long one call to the sidecar's own APIs (health, metadata) may take."""
    sdk_timeout_s: float = 15.0
    """How long one SDK call to the sidecar (a state read or write, a publish, a secret, a call to
    the workflow engine) may take before it fails as unavailable; a blob's binding call may take
    call_timeout_s."""
    call_timeout_s: float = 300.0
    """How long a call to another service through Dapr may wait for its answer (a big commit
    or download forwarded by the gateway takes a while)."""
    max_message_bytes: int = 64 * 1024 * 1024
    """Largest gRPC message to and from the sidecar; the sidecar's maxBodySize (dapr.yaml) matches."""

    app_api_token: SecretStr | None = Field(None, validation_alias=env("app_api_token", "APP_API_TOKEN"))
    """The token this service's sidecar sends with every call to it (daprd's APP_API_TOKEN)."""
    require_app_token: bool = True
    """Refuse requests without the app token (health routes excepted) when one is set."""
    dapr_api_token: SecretStr | None = Field(None, validation_alias=env("dapr_api_token", "DAPR_API_TOKEN"))
    """The token this service's sidecar requires on every call to its API (daprd's DAPR_API_TOKEN)."""
    gateway_app_id: str = "gateway"
    """The gateway's Dapr app id: only on calls from it is the caller's key name (x-daprml-actor) believed."""

    statestore: str = "statestore"
    """Name of the state store component."""
    pubsub: str = "pubsub"
    """Name of the pub/sub component."""
    replica_pubsub: str = "pubsub-replicas"
    """Name of the pub/sub component that gives every replica of a service each event (its
    consumer id is unique per sidecar); used for events that change what a replica holds in memory."""
    secretstore: str = "secretstore"
    """Name of the secret store component."""
    blobstore: str = "blobstore"
    """Name of the output binding that stores blobs."""
    heartbeat_s: float = Field(5.0, ge=0)
    """How often this instance announces itself to the gateways (GET /api/status lists each
    replica by it); 0 announces nothing."""
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]{0,64}$")
    """Put before every topic name: stacks sharing one message broker (a test run beside a
    developer's stack) each get topics of their own."""
