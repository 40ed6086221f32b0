"""The repository reads what earlier releases stored, and stores it in the same shape."""

import asyncio
import json
from datetime import UTC, datetime

from services.ingestion.domain.model import UploadSession
from services.ingestion.domain.views import upload_state
from services.ingestion.repository import DatasetRepository
from tests.fakes import FakeBlobStore, FakeStateStore


def stored(state: FakeStateStore, key: str):
    return json.loads(state.items[key].value)


def test_the_dataset_index_and_open_uploads_keep_their_json_shape():
    state = FakeStateStore()
    # As written by json.dumps before these documents were models.
    asyncio.run(state.save("datasets", json.dumps({"names": ["b", "d"]}).encode()))
    asyncio.run(state.save("uploads:open", json.dumps({"u1": "2026-01-01T00:00:00+00:00"}).encode()))
    repo = DatasetRepository(state, FakeBlobStore())
    assert asyncio.run(repo.names()) == ["b", "d"]
    assert asyncio.run(repo.open_uploads()) == {"u1": "2026-01-01T00:00:00+00:00"}

    asyncio.run(repo.index("c"))
    session = UploadSession(id="u2", dataset="c", target="y")
    asyncio.run(repo.create_session(session))
    asyncio.run(repo.forget_upload("u1"))
    assert stored(state, "datasets") == {"names": ["b", "c", "d"]}
    assert stored(state, "uploads:open") == {"u2": session.created_at.isoformat()}


def test_a_fresh_store_starts_empty_indexes():
    repo = DatasetRepository(FakeStateStore(), FakeBlobStore())
    assert asyncio.run(repo.names()) == [] and asyncio.run(repo.open_uploads()) == {}
    asyncio.run(repo.forget_upload("nothing"))
    assert repo.state.items == {}, "forgetting what is not there writes nothing"


def test_upload_sessions_stored_before_the_committing_state_read_as_they_were():
    state = FakeStateStore()
    repo = DatasetRepository(state, FakeBlobStore())
    for phase in ("open", "committed", "aborted"):
        # As stored before sessions could be committing: no committing_since.
        old = {"id": phase, "dataset": "d", "target": "y", "state": phase, "created_at": "2026-01-01T00:00:00Z"}
        old |= {"parts": {"1": {"sha256": "ab", "key": "k", "rows": 2}}, "version": 3 if phase == "committed" else None}
        asyncio.run(state.save(f"upload:{phase}", json.dumps(old).encode()))
        session = asyncio.run(repo.session(phase))
        assert session is not None and session.state == phase and session.committing_since is None
        assert upload_state(session).state == phase and upload_state(session).rows_accepted == 2
        assert not session.committing_before(datetime.now(UTC)), "only a committing session has a commit"
