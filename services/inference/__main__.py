from services.common.app import serve
from services.inference.app import create_app
from services.inference.settings import Settings

serve(create_app, Settings)
