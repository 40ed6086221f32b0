from services.common.app import serve
from services.monitor.app import create_app
from services.monitor.settings import Settings

serve(create_app, Settings)
