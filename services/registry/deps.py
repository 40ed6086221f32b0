from typing import Annotated

from services.common.deps import depends_on
from services.registry.rollouts import Rollouts
from services.registry.service import RegistryService

ServiceDep = Annotated[RegistryService, depends_on(RegistryService)]
RolloutsDep = Annotated[Rollouts, depends_on(Rollouts)]
