from typing import Annotated

from fastapi import Depends

from services.common.deps import depends_on, settings_of
from services.training.service import JobService
from services.training.settings import Settings

JobsDep = Annotated[JobService, depends_on(JobService)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
