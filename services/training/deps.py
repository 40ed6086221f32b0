from typing import Annotated

from fastapi import Depends

from services.common.deps import service_of, settings_of
from services.training.service import JobService
from services.training.settings import Settings

JobsDep = Annotated[JobService, Depends(service_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
