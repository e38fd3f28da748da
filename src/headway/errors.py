"""The one exception tree.

Every failure, whether raised by a caller's bad input, a policy (limits, budgets) or an upstream
provider, is one of these. Each error knows how it is answered (HTTP status, OpenAI and Anthropic
error types) and how the resilience layer treats it (retryable, fallback-eligible, retry-after).
Provider adapters classify upstream failures once, at the edge; the server maps errors to the wire
in one function (`headway.server.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class HeadwayError(Exception):
    """Base of every error headway raises on purpose."""

    status: ClassVar[int] = 500
    openai_type: ClassVar[str] = "server_error"
    anthropic_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None
    #: the same request may succeed if sent again to the same deployment
    retryable: ClassVar[bool] = False
    #: the same request may succeed on another deployment of the chain
    fallback_eligible: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.retry_after = retry_after
        self.provider = provider
        self.upstream_status = upstream_status
        self.headers: dict[str, str] = {}

    def __str__(self) -> str:
        return self.message


# ---- caller errors (4xx): never retried, never routed around -------------------------------


class InvalidRequest(HeadwayError):
    status = 400
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    default_code = "context_length_exceeded"


class ContentFiltered(InvalidRequest):
    """The provider's safety system refused the prompt. Returned, not routed around, by default."""

    default_code = "content_filter"


class AuthenticationFailed(HeadwayError):
    status = 401
    openai_type = "invalid_request_error"
    anthropic_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(HeadwayError):
    status = 403
    openai_type = "invalid_request_error"
    anthropic_type = "permission_error"
    default_code = "permission_denied"


class NotFound(HeadwayError):
    status = 404
    openai_type = "invalid_request_error"
    anthropic_type = "not_found_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"


class MethodNotAllowed(HeadwayError):
    status = 405
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    default_code = "method_not_allowed"


class RequestTooLarge(HeadwayError):
    status = 413
    openai_type = "invalid_request_error"
    anthropic_type = "request_too_large"
    default_code = "request_too_large"


# ---- policy errors raised by headway itself -------------------------------------------------


class RateLimited(HeadwayError):
    """A limit of the caller's own (key, user, team, global) is exhausted."""

    status = 429
    openai_type = "rate_limit_exceeded"
    anthropic_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        tier: str | None = None,
        limit: str | None = None,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.tier = tier
        self.limit = limit


class BudgetExceeded(RateLimited):
    """A token or dollar budget would be overspent. Not transient within the budget window."""

    default_code = "budget_exceeded"
    openai_type = "insufficient_quota"


class Unavailable(HeadwayError):
    """headway itself cannot serve right now (a required backend such as Redis is down)."""

    status = 503
    openai_type = "server_error"
    anthropic_type = "api_error"
    default_code = "unavailable"


class JobQueued(HeadwayError):
    """Not a failure: the degradation ladder queued a non-real-time call to run later. Answered
    202 with the job id (`location: /v1/jobs/{id}`); `GET /v1/jobs/{id}` polls it."""

    status = 202
    openai_type = "queued"
    anthropic_type = "queued"
    default_code = "queued"

    def __init__(self, job_id: str, *, job: object = None, **kw: object) -> None:
        location = f"/v1/jobs/{job_id}"
        super().__init__(f"queued as job {job_id}; poll GET {location}", **kw)  # type: ignore[arg-type]
        self.job_id = job_id
        #: the queued `headway.degrade.jobs.Job`, which the server answers with
        self.job = job
        self.headers["location"] = location
        self.headers["x-headway-job-id"] = job_id


# ---- upstream errors: classified at the provider edge ---------------------------------------


class UpstreamError(HeadwayError):
    """The provider failed in a way another attempt may not: 5xx, bad gateway, protocol error."""

    status = 502
    openai_type = "server_error"
    anthropic_type = "api_error"
    default_code = "upstream_error"
    retryable = True
    fallback_eligible = True


class UpstreamRateLimited(UpstreamError):
    """The provider answered 429: its limit, not the caller's."""

    status = 429
    openai_type = "rate_limit_exceeded"
    anthropic_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamQuotaExceeded(UpstreamRateLimited):
    """The provider's 429 says the account's quota or credit is spent (OpenAI
    `insufficient_quota`): waiting will not help, another deployment may."""

    default_code = "insufficient_quota"
    retryable = False


class UpstreamOverloaded(UpstreamError):
    """The provider is out of capacity (Anthropic 529, Gemini 503 UNAVAILABLE)."""

    status = 529
    anthropic_type = "overloaded_error"
    default_code = "overloaded"


class UpstreamTimeout(UpstreamError):
    status = 504
    anthropic_type = "timeout_error"
    default_code = "timeout"


class UpstreamAuthFailed(UpstreamError):
    """headway's own credentials for the provider were refused: another deployment may work."""

    status = 502
    default_code = "upstream_auth_failed"
    retryable = False


class UpstreamModelNotFound(UpstreamError):
    """The provider does not know the deployment's model (retired, misconfigured): a config
    problem of headway's, not the caller's; another deployment may serve the call."""

    status = 502
    default_code = "upstream_model_not_found"
    retryable = False


class StreamInterrupted(UpstreamError):
    """A stream broke after it started: connection cut, stall, malformed chunk, no terminator."""

    default_code = "stream_interrupted"


@dataclass(slots=True, frozen=True)
class Attempt:
    deployment: str
    error: str
    status: int | None = None


class AllAttemptsFailed(UpstreamError):
    """Every deployment of a chain failed. Lists each attempt and why."""

    retryable = False
    fallback_eligible = False
    default_code = "all_attempts_failed"

    def __init__(self, attempts: list[Attempt], *, status: int = 502, **kw: object) -> None:
        lines = "; ".join(f"{a.deployment}: {a.error}" for a in attempts)
        super().__init__(f"all {len(attempts)} attempts failed: {lines}", **kw)  # type: ignore[arg-type]
        self.attempts = attempts
        self._status = status

    @property
    def http_status(self) -> int:
        return self._status


class ConfigError(Exception):
    """An invalid configuration. `path` names the offending field, e.g. `routes.default.chain[2]`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def http_status(err: HeadwayError) -> int:
    """The status to answer with; chains report the status of their most telling attempt."""
    if isinstance(err, AllAttemptsFailed):
        return err.http_status
    return err.status
