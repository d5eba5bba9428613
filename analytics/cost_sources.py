"""Where a generation's cost came from (Generation.CostSource): one predicate per source, for SQL, the ORM
and Python, so that every reader asks it the same way (the rollups' unpriced counters, repricing, the
catalog's price use, the generation log and its CSV).

Every generation has a source: ingestion sets it (analytics.ingest.stage) and migration 0018 filled it
for the rows ingested before it was kept (`cost_priced` false: the gateway; true: the catalog).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from analytics.models import Generation


@dataclass(frozen=True)
class CostSource:
    value: int  # Generation.CostSource, a plain int (COPY's smallint, SQL literals)

    def sql(self, column: str = "cost_source") -> str:
        """SQL: `column` (a generation's cost_source) is this source."""
        return f"{column} = {self.value}"

    @property
    def q(self) -> Q:
        """The ORM's filter on generations of this source."""
        return Q(cost_source=self.value)

    def of(self, generation: Generation) -> bool:
        return generation.cost_source == self.value


GATEWAY = CostSource(int(Generation.CostSource.GATEWAY))  # the log's own total_cost, taken as it is
CATALOG = CostSource(int(Generation.CostSource.CATALOG))  # Tokengrid priced it at the catalog's price then
INSURANCE = CostSource(int(Generation.CostSource.INSURANCE))  # failed or empty, no gateway cost: $0
UNPRICED = CostSource(int(Generation.CostSource.UNPRICED))  # no catalog price: not $0, not debited
