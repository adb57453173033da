"""Schemathesis hooks for the contract test (ingest-gateway/tests/contract_stack.rs).

They teach generation what `docs/openapi.yaml` states as extensions, which JSON Schema cannot:

- an event's `timestamp` is `format: date-time` with `x-max-future-seconds: 300`, a bound
  relative to now. Valid data, as generated here, is therefore an RFC 3339 instant no later than
  now (any zone offset); invalid data is still generated from the schema's types and format.
  Schemathesis also reuses values it read in answers (a session's `expiresAt`, an hour ahead):
  a timestamp later than the bound is moved a day before now, with its own offset.
- a rule set's stages are in order (`x-ordered`).
- a registration's `projects` are projects that exist (`x-existing-projects`), and are required
  with the admin token the test runs the management API with (`x-required-with-admin-token`).
- an automation rule's `webhook` action names a subscription of the project, and a PUT's body
  names its path's rule; a webhook URL must resolve, to an allowed address, on a machine
  without DNS: valid ones go to the test's loopback subscription URL.

And one thing about the run itself: Schemathesis reuses ids it read in answers (GET
/api/projects/{id}/keys lists the key the run authenticates with), so the key is protected from
being revoked or rotated under the run.

The Segment API (`/v1/...`) takes any JSON object by design (a message that cannot be used is a
dead letter, not a 400), so its request schemas are permissive and need no hook. Its settings
document is authenticated by the write key in its path (`x-write-key-in-path`): a key of the
schema's form there becomes the run's key.
"""

import os
import re
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
    if case.method.upper() == "POST" and case.path == "/api/auth/register":
        return _existing_projects(case)
    if case.path.startswith("/api/projects/{id}/keys/{keyId}"):
        return _not_the_runs_key(case)
    if case.method.upper() == "POST" and case.path in ("/api/events", "/api/events/batch"):
        return _no_future_timestamps(case)
    if case.path.startswith("/api/automations"):
        return _existing_subscription(case)
    if case.method.upper() == "POST" and case.path == "/api/webhooks":
        return _reachable_url(case)
    if case.path == "/v1/projects/{writeKey}/settings":
        return _the_runs_write_key(case)
    return _stages_in_order(case)


# The key the run authenticates with (LEADFLOW_CONTRACT_KEY): it has the ingest scope.
_KEY = os.environ.get("LEADFLOW_CONTRACT_KEY")


_WRITE_KEY = re.compile(r"^lf_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\Z")


def _the_runs_write_key(case):
    """A write key of the schema's form in the settings document's path becomes the run's key,
    which keeps the case's validity; any other text is left as generated (a 401)."""
    key = case.path_parameters.get("writeKey") if isinstance(case.path_parameters, dict) else None
    if _KEY and isinstance(key, str) and _WRITE_KEY.match(key):
        case.path_parameters = {**case.path_parameters, "writeKey": _KEY}
    return case


# The subscription the test made (LEADFLOW_CONTRACT_SUBSCRIPTION) and its kind of URL.
_SUBSCRIPTION = os.environ.get("LEADFLOW_CONTRACT_SUBSCRIPTION")
_LOOPBACK_URL = "http://127.0.0.1:9/contract"
# What the gateway takes before it resolves the host: an http(s) URL of RFC 3986 characters.
_URL = re.compile(r"^https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z")


def _existing_subscription(case):
    """A `webhook` action with a valid subscription id names the test's subscription; a PUT's
    body with a valid id names the path's rule. Both keep the case's validity."""
    if not isinstance(case.body, dict):
        return case
    body = dict(case.body)
    actions = body.get("actions")
    if _SUBSCRIPTION and isinstance(actions, list):
        body["actions"] = [
            {**a, "subscriptionId": _SUBSCRIPTION}
            if isinstance(a, dict) and a.get("type") == "webhook" and _PROJECT_ID.match(str(a.get("subscriptionId")))
            and isinstance(a.get("subscriptionId"), str)
            else a
            for a in actions
        ]
    path_id = case.path_parameters.get("id") if isinstance(case.path_parameters, dict) else None
    if case.method.upper() == "PUT" and isinstance(path_id, str) and isinstance(body.get("id"), str):
        if _PROJECT_ID.match(body["id"]) and _PROJECT_ID.match(path_id):
            body["id"] = path_id
    case.body = body
    return case


def _reachable_url(case):
    """A webhook URL the schema takes goes to the loopback port the test's subscription uses
    (allowed in the test gateway, and nothing is sent at subscription time); any other is left
    as generated."""
    url = case.body.get("url") if isinstance(case.body, dict) else None
    # Within the schema's maxLength only: a URL too long must stay too long.
    if isinstance(url, str) and len(url) <= 2048 and _URL.match(url):
        case.body = {**case.body, "url": _LOOPBACK_URL}
    return case


_MAX_FUTURE = timedelta(seconds=300)
# RFC 3339's date-time only (Python reads more as ISO 8601): any other text is left as it is.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z")


def _in_the_past(event):
    """The event with a timestamp past the bound moved a day before now; anything else as it is."""
    if not isinstance(event, dict) or not _RFC3339.match(str(event.get("timestamp"))):
        return event
    try:
        instant = datetime.fromisoformat(event["timestamp"])
    except ValueError:
        return event
    if instant.tzinfo is None or instant - datetime.now(timezone.utc) <= _MAX_FUTURE:
        return event
    earlier = (datetime.now(timezone.utc) - timedelta(days=1)).astimezone(instant.tzinfo)
    return {**event, "timestamp": _rfc3339(earlier.replace(microsecond=0))}


def _no_future_timestamps(case):
    if isinstance(case.body, dict) and isinstance(case.body.get("events"), list):
        case.body = {**case.body, "events": [_in_the_past(e) for e in case.body["events"]]}
    elif isinstance(case.body, dict):
        case.body = _in_the_past(case.body)
    return case


# The project the test made (LEADFLOW_CONTRACT_PROJECT): the one a registration can name.
_PROJECT = os.environ.get("LEADFLOW_CONTRACT_PROJECT", "default")
# The id of the key the run authenticates with (LEADFLOW_CONTRACT_KEY_ID).
_KEY_ID = os.environ.get("LEADFLOW_CONTRACT_KEY_ID")
# A key id of the right form that no key has (ids are 48 random bits): answered 404.
_NO_SUCH_KEY_ID = "000000000000"


def _not_the_runs_key(case):
    """Revoking or rotating the key the run uses would turn every later request into a 401: such
    a case names a key id of the same form that no key has instead, which keeps its validity."""
    if _KEY_ID and isinstance(case.path_parameters, dict) and case.path_parameters.get("keyId") == _KEY_ID:
        case.path_parameters = {**case.path_parameters, "keyId": _NO_SUCH_KEY_ID}
    return case
_PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")


def _existing_projects(case):
    """`projects` names the test's project where the generated list is valid, and is present.

    A valid list (at most 100 distinct project ids) becomes the test's project, or stays empty; an
    invalid one is left as generated, so a case keeps its validity under the schema whichever it
    had. An absent `projects` is valid under the schema but required with the admin token: it
    becomes the test's project.
    """
    if not isinstance(case.body, dict):
        return case
    projects = case.body.get("projects", None)
    valid = (
        isinstance(projects, list)
        and len(projects) <= 100
        and all(isinstance(p, str) and _PROJECT_ID.match(p) for p in projects)
        and len(set(projects)) == len(projects)
    )
    if "projects" not in case.body or (valid and projects):
        case.body = {**case.body, "projects": [_PROJECT]}
    return case


def _stages_in_order(case):
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
