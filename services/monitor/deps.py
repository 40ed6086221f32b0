from typing import Annotated

from services.common.deps import depends_on
from services.monitor.service import MonitorService

ServiceDep = Annotated[MonitorService, depends_on(MonitorService)]
