from services.training import fork_safety  # noqa: F401, I001  (first: before gRPC loads)
from services.common.app import serve
from services.training.app import create_app
from services.training.settings import Settings

serve(create_app, Settings)
