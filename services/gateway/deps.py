from typing import Annotated

from fastapi import Depends

from services.common.app import get_ports, get_settings
from services.common.ports import Ports
from services.gateway.settings import Settings

SettingsDep = Annotated[Settings, Depends(get_settings)]
PortsDep = Annotated[Ports, Depends(get_ports)]
