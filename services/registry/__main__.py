from services.common.app import serve
from services.registry.app import create_app
from services.registry.settings import Settings

serve(create_app, Settings)
