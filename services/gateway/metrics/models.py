"""What GET /api/metrics answers."""

from pydantic import BaseModel, Field


class MetricDirections(BaseModel):
    lower_is_better: list[str] = Field(
        description="the metrics whose lower value is the better one (errors and losses); "
        "for every other metric, the higher the better"
    )
