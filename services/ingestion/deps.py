from typing import Annotated

from fastapi import Depends

from services.common.deps import service_of, settings_of
from services.ingestion.service import IngestionService
from services.ingestion.settings import Settings

ServiceDep = Annotated[IngestionService, Depends(service_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
