from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.monitor.settings import Settings

RUN_FILE = Path(__file__).resolve().parents[3] / "dapr.yaml"


def test_the_monitor_runs_as_dapr_yaml_says_and_documents_every_setting(monkeypatch):
    for name in ("APP_ID", "APP_PORT"):
        monkeypatch.delenv(name, raising=False)
    (app,) = [a for a in yaml.safe_load(RUN_FILE.read_text())["apps"] if a["command"][-1] == "services.monitor"]
    settings = Settings()
    assert (settings.app_id, settings.port) == (app["appID"], app["appPort"])
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []


def test_a_delivery_is_never_held_as_long_as_redis_holds_it_before_sending_it_again():
    with pytest.raises(ValidationError):
        Settings(capture_max_wait_s=15)
