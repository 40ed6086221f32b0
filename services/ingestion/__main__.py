from services.common.app import serve
from services.ingestion.app import create_app

app = create_app()
serve(app, app.state.settings)
