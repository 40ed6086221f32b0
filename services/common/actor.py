"""Who asked: the one rule every service applies to name the actor of a change it records (a
model's history says who moved an alias, changed a policy, ...).

Clients reach only the gateway, which knows them by their API keys; the services behind it never
see a key. So the gateway names the caller in ACTOR_HEADER (the key's name) on every call it
forwards, always its own value: a client's header of that name is never passed on
(services/gateway/forwarding/upstream.py). A service believes the header only when both hold:

- the request carries this app's token (`dapr-api-token`): it came through this app's own
  sidecar, not from some process calling the app's port (services.common.middleware);
- the sidecar says the gateway called: `dapr-caller-app-id`, which the *calling* sidecar sets to
  its own app id on every service invocation (daprd 1.18, pkg/messaging/direct_messaging.go,
  addCallerAndCalleeAppIDHeaderToMetadata), its identity checked by mTLS. It must be there
  exactly once: daprd copies the headers an app sends it into the call and adds its own beside
  them, so an app that sends a `dapr-caller-app-id` of its own makes the callee see two, in no
  fixed order, and neither is believed.

Otherwise the actor is the calling app's id (training, when it promotes a version), or UNKNOWN
when no other app called (a sidecar calling its own app sends no caller id) or nothing proves
the path. Work a service does by itself (a background job) names the service's own app id.
"""

import logging
import re
from typing import Annotated

from fastapi import Depends, Request

from services.common.contracts.monitoring import ACTOR_HEADER
from services.common.deps import SettingsDep
from services.common.middleware import carries_app_token
from services.common.settings import ServiceSettings

CALLER_APP_ID = "dapr-caller-app-id"
UNKNOWN = "unknown"
# Key names (the gateway's KEY_NAME) and app ids fit this; anything else is not written down.
_SANE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,199}$")

log = logging.getLogger(__name__)


def actor_of(request: Request, settings: ServiceSettings) -> str:
    """The actor of this request, by the rule above."""
    token = settings.app_api_token
    if token is None or not carries_app_token(request.scope, token.get_secret_value()):
        return UNKNOWN
    callers = request.headers.getlist(CALLER_APP_ID)
    if len(callers) > 1:
        log.warning("a call named %d caller app ids (%s): its actor is not believed", len(callers), callers)
        return UNKNOWN
    if not callers or not _SANE.match(callers[0]):
        return UNKNOWN
    caller = callers[0]
    if caller != settings.gateway_app_id:
        return caller
    named = request.headers.getlist(ACTOR_HEADER)
    if len(named) == 1 and _SANE.match(named[0]):
        return named[0]
    return caller  # the gateway calling on its own account, for no key


async def actor(request: Request, settings: SettingsDep) -> str:
    return actor_of(request, settings)


ActorDep = Annotated[str, Depends(actor)]
"""For a route: `who: ActorDep` is the actor of the request (a key's name, an app id or UNKNOWN)."""
