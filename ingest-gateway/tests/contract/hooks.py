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
