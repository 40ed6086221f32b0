"""What the monitoring routes answer (GET, PUT and DELETE /api/models/{name}/monitoring)."""

from datetime import datetime

from pydantic import BaseModel, Field

from services.common.contracts.monitoring import ShadowAgreement
from services.monitor.domain.ledger import LiveReport
from services.monitor.domain.policy import MonitoringPolicy
from services.monitor.domain.reports import ActionTaken, CheckSummary, VersionReport


class PolicyState(BaseModel):
    """Answer of PUT and DELETE /api/models/{name}/monitoring: the policy as stored now."""

    model: str
    policy: MonitoringPolicy | None = Field(description="None: none set (checks use the defaults)")
    changed: bool = Field(description="False: the policy was the one stored already, nothing was recorded")
    changed_at: datetime | None
    changed_by: str | None
    job: str | None = Field(description="the Dapr Job that runs the check on the policy's schedule; None: unscheduled")


class MonitoringView(BaseModel):
    """Answer of GET /api/models/{name}/monitoring."""

    model: str
    policy: MonitoringPolicy | None = Field(description="None: none set; checks use the defaults")
    changed_at: datetime | None = None
    changed_by: str | None = None
    job: str | None = Field(None, description="the Dapr Job running the checks; None: unscheduled")
    reports: list[VersionReport] = Field(description="each version's last drift report, newest version first")
    checks: list[CheckSummary] = Field(description="the latest checks, newest first (50 at most)")
    actions: list[ActionTaken] = Field(description="what the latest checks did, newest first (50 at most)")
    owed: int = Field(0, description="history entries and drift events not delivered yet (sent again every few s)")
    live: LiveReport | None = Field(None, description="live metrics from feedback (as GET .../monitoring/live)")
    shadows: list[ShadowAgreement] = Field(
        default_factory=list,
        description="each shadow version's answers against those the callers got, over the policy's window",
    )
