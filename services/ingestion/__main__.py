from services.common.app import serve
from services.ingestion.app import create_app
from services.ingestion.settings import Settings

serve(create_app, Settings)
