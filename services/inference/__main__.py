from services.common.app import serve
from services.inference.app import create_app

app = create_app()
serve(app, app.state.settings)
