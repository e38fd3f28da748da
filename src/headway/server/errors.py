"""The one place an error becomes an HTTP answer.

The body shape belongs to the route (OpenAI or Anthropic); status and retry steering are the same
for every route:

- `retry-after` (whole seconds, rounded up) and `retry-after-ms` when the error knows when to
  come back, so SDK backoff follows headway's limits instead of guessing;
- `x-should-retry: false` when another attempt by the client cannot help: headway already
  retried (a chain failed, or more than one attempt was made), the error is permanent (a spent
  budget, a caller error other than 408/409/429, a refused upstream credential), or headway
  itself failed unexpectedly. Both OpenAI and Anthropic SDKs obey it (providers.md 9.3), which
  keeps client retries from multiplying headway's own.
"""

from __future__ import annotations

import math

from headway.context import Served
from headway.errors import (
    AllAttemptsFailed,
    BudgetExceeded,
    HeadwayError,
    JobQueued,
    RequestTooLarge,
    UpstreamError,
    http_status,
)
from headway.server.http import JSON, Response, json_response
from headway.server.routes import ErrorFormat


def internal_error(request_id: str) -> HeadwayError:
    return HeadwayError(
        f"The server had an error while processing your request (request id {request_id}). "
        "It has been logged.",
        code="internal_error",
    )


def should_not_retry(err: HeadwayError, served: Served | None) -> bool:
    if isinstance(err, AllAttemptsFailed | BudgetExceeded):
        return True
    if served is not None and served.attempts > 1:
        return True
    if isinstance(err, UpstreamError):
        return not err.retryable
    status = http_status(err)
    if type(err) is HeadwayError:  # an unexpected failure of headway's: retrying repeats it
        return True
    return 400 <= status < 500 and status not in (408, 409, 429)


def queued_response(err: JobQueued, served: Served | None) -> Response:
    """Not an error: the degradation ladder queued the call. 202 with the job object, the same
    body `POST /v1/jobs` answers, and where to poll it."""
    from headway.degrade.jobs import Job
    from headway.degrade.render import job_headers, job_json

    body: dict[str, object]
    if isinstance(err.job, Job):
        body = job_json(err.job)
    else:
        body = {"id": err.job_id, "object": "headway.job", "status": "queued"}
    return json_response(body, 202, served=served, headers=job_headers(err.job_id))


def error_response(err: HeadwayError, error_format: ErrorFormat, served: Served | None) -> Response:
    if isinstance(err, JobQueued):
        return queued_response(err, served)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items()]
    if err.retry_after is not None:
        delay = max(0.0, err.retry_after)
        headers.append((b"retry-after", str(math.ceil(delay)).encode()))
        headers.append((b"retry-after-ms", str(math.ceil(delay * 1000)).encode()))
    if should_not_retry(err, served):
        headers.append((b"x-should-retry", b"false"))
    if isinstance(err, RequestTooLarge):
        headers.append((b"connection", b"close"))  # the rest of the body was never read
    return Response(error_format(err), http_status(err), JSON, headers, served)
