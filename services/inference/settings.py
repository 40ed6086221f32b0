from pydantic import Field

from services.common.settings import ServiceSettings, env


class Settings(ServiceSettings):
    app_id: str = Field("inference", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    port: int = Field(8004, validation_alias=env("port", "APP_PORT"))
    """Port the HTTP server listens on (the dapr CLI passes it as APP_PORT)."""
    registry_app_id: str = "registry"
    """Dapr app id of the registry service, which describes model versions and serves their files."""
    max_loaded_models: int = Field(8, ge=1)
    """Most model versions kept loaded in memory; the least recently used one is unloaded first."""
    max_records: int = Field(10_000, ge=1)
    """Most records (rows) one predict or infer request may hold."""
    reconcile_interval_s: float = Field(30.0, gt=0)
    """How often each replica asks the registry what the aliases it serves name now (it also
    hears of every move by event; this catches the events it missed)."""
