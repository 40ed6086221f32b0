from typing import Annotated

from fastapi import Depends

from services.common.deps import service_of
from services.registry.service import RegistryService

ServiceDep = Annotated[RegistryService, Depends(service_of)]
