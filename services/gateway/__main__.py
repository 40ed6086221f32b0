from services.common.app import serve
from services.gateway.app import create_app
from services.gateway.settings import Settings

serve(create_app, Settings)
