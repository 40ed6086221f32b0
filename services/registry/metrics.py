"""The registry's own metrics (beside the kit's per-route HTTP metrics): versions registered,
alias moves, promotions decided and refused. No label names a model (a caller names those); an
alias is a label only when the registry itself knows it (champion, challenger), others count as
`other`."""

from prometheus_client import CollectorRegistry, Counter

from services.registry.domain.model import CHAMPION

KNOWN_ALIASES = frozenset({CHAMPION, "challenger"})
OTHER = "other"


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.versions = Counter(
            "daprml_registry_versions_registered",
            "Model versions registered (a job registering again gets its version: not counted)",
            registry=registry,
        )
        self.moves = Counter(
            "daprml_registry_alias_moves",
            "Aliases that moved (or were removed), by alias (champion, challenger, other) and reason "
            "(promotion, api, rollback)",
            ["alias", "reason"],
            registry=registry,
        )
        self.promotions = Counter(
            "daprml_registry_promotions",
            "Promotion decisions for new versions, by outcome: champion (promoted), challenger (not "
            "better than the champion, or a manual policy), conflict (refused: the champion moved since the "
            "version was scored)",
            ["outcome"],
            registry=registry,
        )

    def moved(self, alias: str, reason: str) -> None:
        self.moves.labels(alias if alias in KNOWN_ALIASES else OTHER, reason).inc()
