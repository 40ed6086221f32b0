"""Everything a gateway route may ask for, as `Annotated` aliases: the service objects app.py
builds once (ServiceSpec.services; a route receives the one it uses, never a bag of ports), and
the role guards each public route names (`dependencies=[READ]`)."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.common.deps import depends_on
from services.gateway.access.service import Gatekeeper
from services.gateway.console.service import ConsoleFiles
from services.gateway.dead_letters.service import DeadLetters
from services.gateway.forwarding.upstream import Inference, Ingestion, Monitor, Registry, Training
from services.gateway.keys.domain import KeyRecord, Role
from services.gateway.keys.service import KeyRing
from services.gateway.operations.service import Operations
from services.gateway.status.service import Status

KeysDep = Annotated[KeyRing, depends_on(KeyRing)]
DeadLettersDep = Annotated[DeadLetters, depends_on(DeadLetters)]
StatusDep = Annotated[Status, depends_on(Status)]
ConsoleDep = Annotated[ConsoleFiles, depends_on(ConsoleFiles)]
OperationsDep = Annotated[Operations, depends_on(Operations)]
# The internal services the public routes forward to.
IngestionDep = Annotated[Ingestion, depends_on(Ingestion)]
TrainingDep = Annotated[Training, depends_on(Training)]
RegistryDep = Annotated[Registry, depends_on(Registry)]
InferenceDep = Annotated[Inference, depends_on(Inference)]
MonitorDep = Annotated[Monitor, depends_on(Monitor)]

# As security schemes, so that /docs offers to send a key ("Authorize").
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key, as a header of its own")


def allow(*roles: Role) -> Any:
    """The guard that admits a call any of `roles` allows (admin always may); see access/."""

    async def admitted(
        request: Request,
        gate: Annotated[Gatekeeper, depends_on(Gatekeeper)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> KeyRecord:
        return await gate.admit(request, bearer.credentials if bearer else header, roles)

    return Depends(admitted)


READ = allow(Role.READER)
READ_MODELS = allow(Role.READER, Role.PREDICT)  # OIP clients read metadata before they infer
INGEST = allow(Role.INGEST)
TRAIN = allow(Role.TRAIN)
PREDICT = allow(Role.PREDICT)
# Who predicts may say what actually happened; a feedback key may do only that (a labelling
# system that must not predict). Either may move live metrics, never the champion by itself.
SEND_FEEDBACK = allow(Role.PREDICT, Role.FEEDBACK)
ADMIN = allow(Role.ADMIN)
Caller = Annotated[KeyRecord, ADMIN]
