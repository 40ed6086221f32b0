from typing import Annotated

from fastapi import Depends, Header

from services.common.contracts.models import MAX_ROUTING_KEY, ROUTING_KEY, ROUTING_KEY_HEADER
from services.common.deps import depends_on, settings_of
from services.inference.dataplane import DataPlane
from services.inference.prediction_log import PredictionLog
from services.inference.settings import Settings

PlaneDep = Annotated[DataPlane, depends_on(DataPlane)]
LogDep = Annotated[PredictionLog, depends_on(PredictionLog)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
RoutingKeyHeader = Annotated[
    str | None,
    Header(
        alias=ROUTING_KEY_HEADER,
        max_length=MAX_ROUTING_KEY,
        pattern=ROUTING_KEY,
        description="the caller's name for a sticky canary split: the same key, the same version",
    ),
]
