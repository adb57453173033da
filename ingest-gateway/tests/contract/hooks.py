"""Schemathesis hooks for the contract test (ingest-gateway/tests/contract_stack.rs).

`docs/openapi.yaml` gives an event's `timestamp` as `format: date-time` with
`x-max-future-seconds: 300`: JSON Schema cannot bound a value relative to now. Valid data, as
generated here, is therefore an RFC 3339 instant no later than now (any zone offset); invalid
data is still generated from the schema's types and format.
"""

from datetime import datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

_zones = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _rfc3339(instant: datetime) -> str:
    text = instant.isoformat()
    return text.replace("+00:00", "Z") if text.endswith("+00:00") else text


schemathesis.openapi.format(
    "date-time",
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        # Naive bounds are the zone's wall clock: a day short of now keeps every offset in the past.
        max_value=datetime.now() - timedelta(days=1),
        timezones=_zones,
    ).map(_rfc3339),
)


@schemathesis.hook
def map_case(context, case):
    """A rule set's stage thresholds are in order (`x-ordered`: warm <= hot <= qualified).

    The three share one schema, so sorting their values changes no case's validity under it:
    a valid case stays valid and meets the ordering too, an invalid one keeps its violation.
    """
    if case.method.upper() != "PUT" or case.path != "/api/scoring-rules" or not isinstance(case.body, dict):
        return case
    stages = case.body.get("stages")
    names = ("warm", "hot", "qualified")
    if not isinstance(stages, dict) or not all(
        isinstance(stages.get(n), (int, float)) and not isinstance(stages.get(n), bool) for n in names
    ):
        return case
    ordered = sorted(stages[n] for n in names)
    if [stages[n] for n in names] != ordered:
        body = dict(case.body)
        body["stages"] = {**stages, **dict(zip(names, ordered))}
        case.body = body
    return case
