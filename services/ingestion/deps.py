from typing import Annotated

from fastapi import Depends, Request

from services.ingestion.service import IngestionService
from services.ingestion.settings import Settings


def get_service(request: Request) -> IngestionService:
    return request.app.state.ingestion


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


ServiceDep = Annotated[IngestionService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
