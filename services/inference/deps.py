from typing import Annotated

from fastapi import Depends, Request

from services.common.deps import service_of, settings_of
from services.inference.dataplane import DataPlane
from services.inference.prediction_log import PredictionLog
from services.inference.settings import Settings


def prediction_log_of(request: Request) -> PredictionLog:
    found: PredictionLog = request.app.state.prediction_log
    return found


PlaneDep = Annotated[DataPlane, Depends(service_of)]
LogDep = Annotated[PredictionLog, Depends(prediction_log_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
