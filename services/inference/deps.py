from typing import Annotated

from fastapi import Depends

from services.common.deps import depends_on, settings_of
from services.inference.dataplane import DataPlane
from services.inference.prediction_log import PredictionLog
from services.inference.settings import Settings

PlaneDep = Annotated[DataPlane, depends_on(DataPlane)]
LogDep = Annotated[PredictionLog, depends_on(PredictionLog)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
