from typing import Annotated

from fastapi import Depends

from services.common.deps import depends_on, settings_of
from services.ingestion.service import IngestionService
from services.ingestion.settings import Settings

ServiceDep = Annotated[IngestionService, depends_on(IngestionService)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
