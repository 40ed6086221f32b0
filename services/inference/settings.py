from pydantic import Field

from services.common.settings import ServiceSettings, env


class Settings(ServiceSettings):
    app_id: str = Field("inference", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    port: int = Field(8004, validation_alias=env("port", "APP_PORT"))
    """Port the HTTP server listens on (the dapr CLI passes it as APP_PORT)."""
