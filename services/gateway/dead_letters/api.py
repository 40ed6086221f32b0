"""The admins' routes over the dead letters the gateway keeps (see service.py)."""

from typing import Annotated

from fastapi import APIRouter, Path

from services.gateway.dead_letters.models import DEAD_LETTER_ID, DeadLetter
from services.gateway.deps import ADMIN, DeadLettersDep

router = APIRouter(prefix="/api/events/dead-letters", tags=["events"])
DeadLetterId = Annotated[str, Path(pattern=DEAD_LETTER_ID, description="the id GET /api/events/dead-letters gives")]


@router.get("", response_model=list[DeadLetter], dependencies=[ADMIN])
async def list_dead_letters(dead_letters: DeadLettersDep) -> list[DeadLetter]:
    """The latest events a subscriber gave up on (dropped as invalid, or failed past its
    delivery retries), newest first."""
    return await dead_letters.list()


@router.post("/{dead_letter_id}/replay", status_code=202, response_model=DeadLetter, dependencies=[ADMIN])
async def replay_dead_letter(dead_letter_id: DeadLetterId, dead_letters: DeadLettersDep) -> DeadLetter:
    """Publishes the event again, as it was, to the topic it came from (one of this deployment's);
    it stays listed, with replayed_at, and comes back if it fails again."""
    return await dead_letters.replay(dead_letter_id)


@router.delete("/{dead_letter_id}", response_model=DeadLetter, dependencies=[ADMIN])
async def discard_dead_letter(dead_letter_id: DeadLetterId, dead_letters: DeadLettersDep) -> DeadLetter:
    """Forgets a dead letter."""
    return await dead_letters.discard(dead_letter_id)
