"""The pipeline: what an agency's event passes through, from its topic to a unit's queue.

- `ingest`: bytes become a validated event (or a dead letter with the reason);
- `batch`: a chunk of events applied in one transaction, as load, decide, write (`hub.store.load`,
  `handlers`, `hub.store.write`);
- `handlers`: enrich and route, one rule set per event type, on plain records;
- `notify`, `outbound`, `catch_up`: the notifications and the records for other agencies that the rules make;
- `delivery`: what goes to a unit's HTTP endpoint; `redaction`: what operators may see of a dead letter.
"""

from hub.pipeline.batch import BatchResult, Pipeline, TransientFailure

__all__ = ["BatchResult", "Pipeline", "TransientFailure"]
