import pytest

from services.common.settings import ServiceSettings
from services.gateway.settings import Settings as GatewaySettings
from services.ingestion.settings import Settings as IngestionSettings


def test_ports_and_app_id_come_from_what_the_dapr_cli_sets(monkeypatch):
    monkeypatch.setenv("APP_ID", "ingestion-x")
    monkeypatch.setenv("APP_PORT", "9101")
    monkeypatch.setenv("DAPR_HTTP_PORT", "9102")
    monkeypatch.setenv("DAPR_GRPC_PORT", "9103")
    s = IngestionSettings()
    assert (s.app_id, s.port, s.dapr_http_port, s.dapr_grpc_port) == ("ingestion-x", 9101, 9102, 9103)


def test_daprml_variables_win_over_the_cli_ones(monkeypatch):
    monkeypatch.setenv("APP_PORT", "9101")
    monkeypatch.setenv("DAPRML_PORT", "9201")
    assert IngestionSettings().port == 9201


def test_defaults_when_nothing_is_set(monkeypatch):
    for name in ("APP_ID", "APP_PORT", "DAPR_HTTP_PORT", "DAPR_GRPC_PORT"):
        monkeypatch.delenv(name, raising=False)
    s = GatewaySettings()
    assert (s.app_id, s.port, s.host) == ("gateway", 8000, "127.0.0.1")
    assert (s.statestore, s.pubsub, s.secretstore, s.blobstore) == ("statestore", "pubsub", "secretstore", "blobstore")


def test_component_names_and_peer_app_ids_are_settings(monkeypatch):
    monkeypatch.setenv("DAPRML_STATESTORE", "state-postgres")
    monkeypatch.setenv("DAPRML_TRAINING_APP_ID", "training-blue")
    s = GatewaySettings()
    assert s.statestore == "state-postgres"
    assert s.app_ids()["training"] == "training-blue"
    assert s.app_ids()["gateway"] == s.app_id


def test_every_setting_documents_itself_in_its_field_description():
    for settings in (ServiceSettings, GatewaySettings, IngestionSettings):
        undocumented = [name for name, field in settings.model_fields.items() if not field.description]
        assert undocumented == [], f"{settings.__module__}: {undocumented}"
    assert ServiceSettings.model_fields["statestore"].description == "Name of the state store component."


def test_a_bad_setting_ends_the_process_with_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DAPRML_CALL_TIMEOUT_S", "soon")
    with pytest.raises(SystemExit) as ended:
        ServiceSettings.load()
    assert "call_timeout_s" in str(ended.value).lower() and "soon" not in str(ended.value).split(":")[0]
