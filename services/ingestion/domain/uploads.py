"""The rules of an upload session's life, without the store: which session a new upload gets,
which sessions still take changes, and how one ends.

open -> committing -> committed, or open -> aborted. A session committing takes no parts and
cannot be aborted: its commit is making a version of its parts."""

import uuid
from datetime import datetime
from typing import Literal

from services.common.contracts import Origin, Task
from services.ingestion.domain.errors import BadInput, Conflict, Missing
from services.ingestion.domain.model import DatasetRecord, UploadSession
from services.ingestion.domain.schema import Schema, is_valid_name


def no_dataset(name: str) -> Missing:
    return Missing(
        f"dataset {name!r} does not exist; create it first, or upload with a target column to create it from the data"
    )


def being_committed(upload_id: str) -> str:
    return (
        f"upload {upload_id!r} is being committed, so it cannot be aborted; wait for the commit to finish "
        f"(if it failed, commit again: that finishes it), then read the version it made"
    )


def takes_no_parts(upload_id: str) -> str:
    return f"upload {upload_id!r} is being committed and takes no more parts; send more data in a new upload"


def new_session(
    name: str, record: DatasetRecord | None, target: str | None, task: Task | None, origin: Origin | None = None
) -> UploadSession:
    """A session for an existing dataset, or for a new one when the target is named. A session
    with an origin (a monitoring retrain) is for an existing dataset, whose version it names as
    the base: its commit writes the origin into the version's manifest."""
    if origin is not None and (record is None or record.version(origin.base_version) is None):
        have = [v.version for v in record.versions] if record is not None else []
        raise Missing(
            f"dataset {name!r} has no version {origin.base_version}, which the origin names as its base "
            f"(its versions: {have or 'none'})"
        )
    if record is None:
        if target is None:
            raise no_dataset(name)
        if not is_valid_name(name):
            raise BadInput(f"{name!r} is not a valid dataset name: use lower-case letters, digits, '-' and '_'")
        return UploadSession(id=uuid.uuid4().hex, dataset=name, target=target, task=task)
    if target is not None and target != record.target:
        raise Conflict(f"dataset {name!r} has target {record.target!r}, not {target!r}")
    if task is not None and task != record.task:
        raise Conflict(f"dataset {name!r} is for {record.task}, not {task}")
    return UploadSession(
        id=uuid.uuid4().hex,
        dataset=name,
        target=record.target,
        task=record.task,
        schema_=record.schema_,
        origin=origin,
    )


def usable(session: UploadSession | None, upload_id: str) -> UploadSession:
    """The session, unless it is gone or aborted."""
    if session is None:
        raise Missing(f"upload {upload_id!r} does not exist (or was aborted)")
    if session.state == "aborted":
        raise Conflict(f"upload {upload_id!r} was aborted; start a new one")
    return session


def committable(session: UploadSession) -> Schema:
    """The schema the session's parts were validated with; refused while it has no parts."""
    if not session.parts or session.schema_ is None:
        raise BadInput(f"upload {session.id!r} has no parts yet; send at least one part before committing")
    return session.schema_


def close(
    session: UploadSession | None,
    upload_id: str,
    state: Literal["committed", "aborted"],
    version: int | None,
    committing_before: datetime | None,
) -> UploadSession:
    """The session ended committed or aborted. An abort is refused once committed, and while
    committing unless its commit began before `committing_before` (it died)."""
    session = usable(session, upload_id)
    if state == "aborted" and session.state == "committed":
        raise Conflict(f"upload {upload_id!r} is committed as version {session.version}; it cannot be aborted")
    if state == "aborted" and session.state == "committing":
        if committing_before is None or not session.committing_before(committing_before):
            raise Conflict(being_committed(upload_id))
    session.state, session.version = state, version
    return session
