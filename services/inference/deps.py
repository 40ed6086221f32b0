from typing import Annotated

from fastapi import Depends

from services.common.deps import service_of, settings_of
from services.inference.dataplane import DataPlane
from services.inference.settings import Settings

PlaneDep = Annotated[DataPlane, Depends(service_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
