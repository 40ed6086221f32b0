from services.common.app import serve
from services.registry.app import create_app

app = create_app()
serve(app, app.state.settings)
