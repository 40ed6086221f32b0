"""How many jobs may wait or run at once, per dataset and in all: each of them holds a place
in the workers' queue (and, once there, hours of a worker), so their number is bounded.

The jobs that hold a place are kept in one document, changed by compare-and-swap, so that two
submissions racing for the last place cannot both get it. A job leaves it when it is canceled;
one that ended otherwise is found out (its workflow asked) the next time the document is full.
"""

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

from services.common.errors import ClientError
from services.common.ports import StateStore
from services.common.state import Documents
from services.training.settings import Settings

KEY = "jobs:waiting-or-running"


class TooManyJobs(ClientError):
    status = 429


class Places(BaseModel):
    jobs: dict[str, str] = Field(default_factory=dict)  # job id -> its dataset


class Admission:
    def __init__(
        self,
        state: StateStore,
        finished: Callable[[str], Awaitable[bool]],
        settings: Settings,
        refused: Callable[[], None] = lambda: None,
    ):
        """`finished` says whether a job has ended (asks its workflow); `refused` is told of each
        submission refused (a metric)."""
        self.places, self.finished, self.settings = Documents(state, Places), finished, settings
        self.refused = refused

    async def admit(self, job: str, dataset: str) -> None:
        """Gives the job a place, or raises TooManyJobs (429, with Retry-After)."""
        held = await self.places.get(KEY) or Places()
        ended: set[str] = set()
        if job not in held.jobs and self._refusal(held, dataset):
            # Full, as far as the document knows: the jobs that have ended since give their places back.
            ended = {j for j in held.jobs if await self.finished(j)}

        def take(found: Places | None) -> Places:
            places = Places(jobs={j: d for j, d in (found or Places()).jobs.items() if j not in ended})
            if job not in places.jobs:
                refusal = self._refusal(places, dataset)
                if refusal:
                    raise TooManyJobs(refusal, {"retry-after": str(self.settings.busy_retry_after_s)})
                places.jobs[job] = dataset
            return places

        try:
            await self.places.update(KEY, take)
        except TooManyJobs:
            self.refused()
            raise

    async def release(self, job: str) -> None:
        def leave(found: Places | None) -> Places | None:
            if found is None or job not in found.jobs:
                return None
            return Places(jobs={j: d for j, d in found.jobs.items() if j != job})

        await self.places.update(KEY, leave)

    def _refusal(self, places: Places, dataset: str) -> str | None:
        """Why one more job of the dataset may not wait, or None."""
        limit, of_dataset = self.settings.max_pending_jobs_per_dataset, list(places.jobs.values()).count(dataset)
        if of_dataset >= limit:
            return (
                f"{of_dataset} jobs of dataset {dataset!r} are waiting or running, the most there may be "
                f"(DAPRML_MAX_PENDING_JOBS_PER_DATASET); submit again when one has finished, or cancel one"
            )
        if len(places.jobs) >= self.settings.max_pending_jobs:
            return (
                f"{len(places.jobs)} training jobs are waiting or running, the most there may be "
                f"(DAPRML_MAX_PENDING_JOBS); submit again when one has finished, or cancel one"
            )
        return None
