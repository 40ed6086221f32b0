from typing import Annotated

from services.common.deps import depends_on
from services.monitor.evidence import EvidenceService
from services.monitor.feedback import FeedbackService
from services.monitor.live import LiveTracker
from services.monitor.monitoring import Monitoring
from services.monitor.service import MonitorService

ServiceDep = Annotated[MonitorService, depends_on(MonitorService)]
FeedbackDep = Annotated[FeedbackService, depends_on(FeedbackService)]
LiveDep = Annotated[LiveTracker, depends_on(LiveTracker)]
MonitoringDep = Annotated[Monitoring, depends_on(Monitoring)]
EvidenceDep = Annotated[EvidenceService, depends_on(EvidenceService)]
