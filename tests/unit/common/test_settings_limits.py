"""The sidecars' body-size limit and the services' own limits must agree."""

import re
from pathlib import Path

import yaml

from services.common.settings import ServiceSettings
from services.ingestion.settings import Settings as IngestionSettings

RUN_FILE = Path(__file__).resolve().parents[3] / "dapr.yaml"
UNITS = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def sidecar_limit() -> int:
    value = yaml.safe_load(RUN_FILE.read_text())["common"]["maxBodySize"]
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi|)", value).groups()
    return int(number) * UNITS[unit]


def test_a_full_ingestion_part_fits_through_the_sidecars_with_room_for_headers():
    assert IngestionSettings().max_part_bytes + 1024 * 1024 <= sidecar_limit()


def test_the_sdk_message_limit_matches_the_sidecars():
    assert ServiceSettings().max_message_bytes == sidecar_limit()
