from services.common.app import serve
from services.training.app import create_app

app = create_app()
serve(app, app.state.settings)
