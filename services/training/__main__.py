from services.common.app import serve
from services.training.app import create_app
from services.training.settings import Settings

serve(create_app, Settings)
