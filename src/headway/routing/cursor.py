"""Which deployment a call tries next: breaker admission, attempt and deadline bounds, and what a
failure means (re-send, fall over, give up), for one call through one chain.

The decisions themselves are the pure functions of `retry`; the cursor holds the call's counters,
asks the breakers, and keeps the list of attempts that `AllAttemptsFailed` reports.
"""

from __future__ import annotations

from collections.abc import Sequence

from headway.context import Served
from headway.errors import (
    AllAttemptsFailed,
    Attempt,
    ContentFiltered,
    ContextLengthExceeded,
    HeadwayError,
    UpstreamError,
    UpstreamTimeout,
    http_status,
)
from headway.routing.breaker import Admission, Outcome
from headway.routing.policy import Member, Resilience, RoutePolicy
from headway.routing.retry import Action, Decision, Failure, RetryBudget, decide

SKIPPED_OPEN = "skipped: circuit open"
SKIPPED_CAPACITY = "skipped: provider limit reached"


def breaker_outcome(exc: HeadwayError) -> Outcome:
    """Upstream failures count against a deployment; a caller's error proves it is alive."""
    return Outcome.FAILURE if isinstance(exc, UpstreamError) else Outcome.SUCCESS


class Cursor:
    __slots__ = (
        "_deadline_logged",
        "attempts",
        "budget",
        "deadline",
        "fatal",
        "index",
        "last",
        "log",
        "members",
        "order",
        "policy",
        "pos",
        "probe",
        "recoveries",
        "recovering",
        "res",
        "retries_here",
        "served",
        "skip",
    )

    def __init__(
        self,
        members: Sequence[Member],
        policy: RoutePolicy,
        res: Resilience,
        budget: RetryBudget,
        deadline: float | None,
        served: Served,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        self.members = members
        #: members the limits stage found without capacity for this call
        self.skip = skip
        self.policy = policy
        self.res = res
        self.budget = budget
        self.deadline = deadline
        self.served = served
        self.order: list[int] = list(range(len(members)))
        self.pos = 0
        self.retries_here = 0
        self.attempts = 0
        self.recoveries = 0
        self.recovering = False
        self.probe = False
        self.index = 0  # chain index of the member last handed out
        self.log: list[Attempt] = []
        self.last: HeadwayError | None = None
        self.fatal: HeadwayError | None = None
        self._deadline_logged = False

    # ---- choosing ---------------------------------------------------------------------------

    def _bounded(self) -> bool:
        if self.recovering:
            return self.recoveries >= self.policy.recovery_attempts
        return self.attempts >= self.policy.retry.max_attempts

    def _past_deadline(self, name: str) -> bool:
        if self.deadline is None or self.res.clock.monotonic() < self.deadline:
            return False
        if not self._deadline_logged:
            self._deadline_logged = True
            self.log.append(Attempt(name, "skipped: the call's deadline passed"))
        return True

    async def next(self) -> Member | None:
        """The next member to try (its breaker admitted it), or None when the call must stop."""
        while self.pos < len(self.order) and self.fatal is None:
            if self._bounded():
                return None
            idx = self.order[self.pos]
            m = self.members[idx]
            if self._past_deadline(m.name):
                return None
            if m.name in self.skip:
                self.log.append(Attempt(m.name, SKIPPED_CAPACITY))
                self.advance()
                continue
            breakers = self.res.breakers  # no coroutine when the store is memory
            admission = (
                breakers.admit_now(m.name, self.policy.breaker)
                if breakers.sync
                else await breakers.admit(m.name, self.policy.breaker)
            )
            if admission is Admission.REJECT:
                self.log.append(Attempt(m.name, SKIPPED_OPEN))
                self.advance()
                continue
            self.took(idx, admission is Admission.PROBE)
            self.served.attempts += 1
            return m
        return None

    def took(self, idx: int, probe: bool) -> None:
        """Member `idx` was handed out (its breaker admitted it; `probe`: as a probe). The chain
        calls it itself for a first attempt it made before it needed a cursor."""
        self.probe = probe
        self.index = idx
        if self.recovering:
            self.recoveries += 1
        else:
            self.attempts += 1

    async def peek_healthy(self) -> tuple[int, Member, bool] | None:
        """Admit the next member after the current one without moving there (a hedge target).
        Returns (chain index, member, probe)."""
        for pos in range(self.pos + 1, len(self.order)):
            idx = self.order[pos]
            m = self.members[idx]
            if m.name in self.skip:
                continue
            admission = await self.res.breakers.admit(m.name, self.policy.breaker)
            if admission is not Admission.REJECT:
                return idx, m, admission is Admission.PROBE
        return None

    def advance(self) -> None:
        self.pos += 1
        self.retries_here = 0

    def move_to(self, idx: int) -> None:
        """Continue from chain index `idx` (a hedge won there)."""
        self.pos = self.order.index(idx)
        self.index = idx
        self.retries_here = 0

    def recover_from(self, idx: int, *, slow: bool) -> None:
        """Switch to recovery candidates after a stream broke on member `idx`: the same
        deployment first (a cut connection is usually transient), or, when it was slow (stall,
        first-token deadline), the following ones first. Earlier members come last."""
        after = list(range(idx + 1, len(self.members)))
        before = list(range(idx))
        self.order = [*after, idx, *before] if slow else [idx, *after, *before]
        self.pos = 0
        self.retries_here = 0
        self.recovering = True

    # ---- reporting --------------------------------------------------------------------------

    async def succeeded(self, m: Member, probe: bool) -> None:
        breakers = self.res.breakers
        if breakers.sync:
            breakers.record_now(m.name, self.policy.breaker, Outcome.SUCCESS, probe=probe)
        else:
            await breakers.record(m.name, self.policy.breaker, Outcome.SUCCESS, probe=probe)

    def released(self, m: Member, probe: bool) -> None:
        """The attempt ended without a verdict (cancelled, lost a hedge): free a probe slot."""
        if probe and self.policy.breaker is not None:
            self.res.spawn(
                self.res.breakers.record(m.name, self.policy.breaker, Outcome.RELEASE, probe=True)
            )

    async def failed(self, m: Member, exc: HeadwayError, probe: bool) -> None:
        """Record a failed attempt with the breaker and in the attempt log."""
        await self.res.breakers.record(
            m.name, self.policy.breaker, breaker_outcome(exc), probe=probe, why=exc.message
        )
        self.log.append(Attempt(m.name, exc.message, exc.upstream_status or exc.status))
        self.last = exc

    def _context_target(self, m: Member) -> int | None:
        if m.max_context is None:
            return None
        for pos in range(self.pos + 1, len(self.order)):
            other = self.members[self.order[pos]].max_context
            if other is not None and other > m.max_context:
                return pos
        return None

    def decide(self, m: Member, exc: HeadwayError) -> Decision:
        """What to do after `exc` (already recorded with `failed`); applies the decision to the
        cursor and returns it. The caller sleeps for a RETRY's delay."""
        target: int | None = self.pos + 1 if self.pos + 1 < len(self.order) else None
        failure = Failure(exc.retryable, exc.fallback_eligible, exc.retry_after)
        if isinstance(exc, ContentFiltered) and self.policy.route_around_content_filter:
            failure = Failure(False, True)
        elif isinstance(exc, ContextLengthExceeded):
            target = self._context_target(m)
            failure = Failure(False, target is not None)
        now = self.res.clock.monotonic()
        decision = decide(
            failure,
            self.policy.retry,
            retries_here=self.retries_here,
            attempts=self.attempts,
            has_next=target is not None,
            now=now,
            deadline=self.deadline,
            budget_ok=self.budget.can_retry(now),
            u=self.res.rng.random(),
        )
        events = self.res.events
        if decision.action is Action.RETRY:
            self.budget.record_retry(now)
            self.retries_here += 1
            events.emit("retry", deployment=m.name, delay_s=decision.delay, error=exc.message)
        elif decision.action is Action.FALLBACK and target is not None:
            self.pos = target
            self.retries_here = 0
            nxt = self.members[self.order[target]].name
            events.emit("fallback", deployment=m.name, to=nxt, reason=decision.reason)
        else:
            if not (failure.retryable or failure.fallback_eligible):
                self.fatal = exc
            if decision.reason == "retry budget exhausted":
                events.emit("retry_budget.exhausted", deployment=m.name)
        return decision

    def error(self) -> HeadwayError:
        """The error the caller gets when the call stops without an answer."""
        if self.fatal is not None:
            return self.fatal
        last = self.last
        if last is not None and len({a.deployment for a in self.log}) == 1:
            return last  # one deployment (maybe re-sent to): its own error says it best
        if last is None and not self.log:
            return UpstreamTimeout("the call's deadline passed before any attempt")
        status = http_status(last) if last is not None else 503
        retry_after = last.retry_after if last is not None else None
        return AllAttemptsFailed(list(self.log), status=status, retry_after=retry_after)
