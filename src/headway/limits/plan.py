"""Which limits and budgets a call meets, as store items: tiers resolved from the principal, the
request and the route, with the call's estimated demand.

Tiers and their identities (every identity is scoped so tenants never share a counter):

- key: `principal.key_id`; the config default, overridden per metric by `principal.limits`
- user: `principal.user`, else the OpenAI `user` field, else the configured header (per tenant)
- team: `principal.team` (per tenant); `limits.teams.<name>` overrides the default
- global: one counter for everything
- deployment: the provider's own limits, one group per deployment of the chain, of which the
  store charges the first that fits (the others are where a fallback could go)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from headway.budgets.config import BudgetAmount, BudgetsConfig
from headway.budgets.items import budget_items
from headway.budgets.pricing import PriceBook, worst_case_micro
from headway.budgets.values import BudgetSpec
from headway.config.runtime import Deployment, RuntimeConfig
from headway.context import Call
from headway.errors import BudgetExceeded
from headway.limits.config import LimitsConfig, LimitValues
from headway.limits.estimate import Demand, Estimator
from headway.limits.headers import header_slots
from headway.limits.values import Item, LimitSpec, Measure

# metric -> (seconds to refill the limit, what it counts)
_RATES: tuple[tuple[str, float, Measure], ...] = (
    ("rpm", 60.0, "requests"),
    ("rpd", 86400.0, "requests"),
    ("tpm", 60.0, "tokens"),
    ("tpd", 86400.0, "tokens"),
    ("input_tpm", 60.0, "input"),
    ("output_tpm", 60.0, "output"),
)


def esc(ident: str) -> str:
    """An identity safe to join with `:` (so `a:b` + `c` never meets `a` + `b:c`)."""
    return ident.replace("%", "%25").replace(":", "%3A")


def rate_protos(tier: str, ident: str, spec: LimitSpec, lease_s: float) -> tuple[Item, ...]:
    """The items of one tier's rate limits with amounts left to `fill` (0), except counts of
    requests and slots, which are always 1: those items are final and reused as they are."""
    out: list[Item] = []
    for metric, period, measure in _RATES:
        limit = getattr(spec, metric)
        if limit is not None:
            key = f"{tier}:{ident}:{metric}"
            fixed = 1 if measure == "requests" else 0
            out.append(Item(key, "bucket", limit, period, fixed, tier, measure, metric))
    if spec.concurrency is not None:
        key = f"{tier}:{ident}:concurrency"
        out.append(
            Item(key, "concurrency", spec.concurrency, lease_s, 1, tier, "slots", "concurrency")
        )
    return tuple(out)


#: measures whose amount is the same for every call (their prototype items are reused)
_FIXED = frozenset(("requests", "slots"))


def fill(protos: Iterable[Item], demand: Demand, cost_micro: int = 0) -> list[Item]:
    """The prototype items with this call's amounts (tokens from `demand`, usd `cost_micro`)."""
    amounts = {
        "tokens": demand.total,
        "input": demand.input_tokens,
        "output": demand.output_tokens,
        "usd": cost_micro,
    }
    return [
        p
        if p.measure in _FIXED
        else Item(
            p.key,
            p.kind,
            p.limit,
            p.period,
            amounts[p.measure],
            p.tier,
            p.measure,
            p.label,
            p.budget,
        )
        for p in protos
    ]


def rate_items(
    tier: str, ident: str, spec: LimitSpec, demand: Demand, lease_s: float
) -> list[Item]:
    return fill(rate_protos(tier, ident, spec, lease_s), demand)


@dataclass(slots=True)
class Plan:
    """One call's demand and the items to reserve for it."""

    #: deployments that may serve the call, in chain order
    chain: tuple[str, ...]
    demands: dict[str, Demand]
    #: the largest demand over the chain: what caller tiers and budgets reserve
    demand: Demand
    output_cap: int
    items: tuple[Item, ...]
    #: the provider's own limits, per deployment of the chain
    dep_items: dict[str, tuple[Item, ...]]
    worst_micro: int
    #: the caller's part, worked out once per caller: the keys of `items`, which of them the
    #: x-ratelimit headers come from, and which are budgets
    caller: _Caller


def _default_charge(kind: str) -> str:
    # Anthropic corrects its up-front output charge afterwards; OpenAI-style providers do not
    return "actual" if kind == "anthropic" else "reserved"


def _spec(values: LimitValues | None) -> LimitSpec | None:
    return values.spec() if values is not None else None


def _budgets(amounts: Iterable[BudgetAmount]) -> tuple[BudgetSpec, ...]:
    return tuple(a.spec() for a in amounts)


class Planner:
    """Built once per config; `plan(call)` is the per-request work."""

    def __init__(
        self,
        runtime: RuntimeConfig,
        estimator: Estimator,
        prices: PriceBook,
    ) -> None:
        lim: LimitsConfig = runtime.file.limits
        bud: BudgetsConfig = runtime.file.budgets
        self._estimator = estimator
        self._prices = prices
        self._deps = runtime.deployments
        self._limits_on = lim.enabled
        self._budgets_on = bud.enabled
        self._lease = lim.concurrency_lease_s
        self._user_header = lim.user_header.lower()
        self.global_ = _spec(lim.global_)
        self.key = _spec(lim.key) or LimitSpec()
        self.user = _spec(lim.user)
        self.team = _spec(lim.team)
        self.teams = {name: v.spec() for name, v in lim.teams.items()}
        self.deployments = {name: v.spec() for name, v in lim.deployments.items()}
        #: deployments whose provider keeps the up-front charge (no refund at settlement)
        self.keeps_reserved = frozenset(
            name
            for name, v in lim.deployments.items()
            if name in self._deps
            and (v.charge or _default_charge(self._deps[name].provider.kind)) == "reserved"
        )
        self.b_key = _budgets(bud.key)
        self.b_user = _budgets(bud.user)
        self.b_team = _budgets(bud.team)
        self.b_teams = {name: _budgets(v) for name, v in bud.teams.items()}
        self.b_global = _budgets(bud.global_)
        self.per_request = bud.per_request
        self._chains: dict[str, tuple[str, ...]] = {
            name: route.chain for name, route in runtime.routes.items()
        }
        for name, dep in runtime.deployments.items():
            if not dep.model.embeddings:
                self._chains[name] = (name,)
        self._task_routes = dict(runtime.file.routing)
        self._any_chat = tuple(d for d in self._deps.values() if not d.model.embeddings)
        #: per chain, resolved once: its deployments and the output cap of a call that sets
        #: no max_tokens (`Estimator.output_cap`, the dearest case for an unknown model)
        self._chain_info = {
            chain: (deps, estimator.default_cap(deps or self._any_chat))
            for chain in {(), *self._chains.values()}
            for deps in [tuple(self._deps[n] for n in chain)]
        }
        #: per deployment, resolved once: (encoding, estimate factor, price, own-limit items)
        self._dep_info = {
            name: (
                estimator.encoding_of(dep),
                estimator.factor(dep),
                prices.get(name),
                rate_protos("deployment", esc(name), self.deployments[name], self._lease)
                if self._limits_on and name in self.deployments
                else None,
            )
            for name, dep in self._deps.items()
        }
        #: whether any deployment has limits of its own (most configs: none)
        self._own_limits = any(info[3] is not None for info in self._dep_info.values())
        #: caller identity -> its items with amounts to fill: built on a caller's first call,
        #: never again (a config reload builds a new Planner; a changed key is a new identity)
        self._callers: dict[_CallerId, _Caller] = {}
        #: (deployment, input tokens, output tokens) -> worst-case cost: the same exact figure
        #: `worst_case_micro` gives, remembered (its Decimal arithmetic is most of its price;
        #: calls of a route share their output cap, and prompts of one size recur)
        self._worst: dict[tuple[str, int, int], int] = {}

    def chain_of(self, call: Call) -> tuple[str, ...]:
        chain = self._chains.get(call.request.model)
        if chain is None and call.task is not None and call.task in self._task_routes:
            chain = self._chains.get(self._task_routes[call.task])
        return chain or ()

    def user_of(self, call: Call) -> str | None:
        p = call.principal
        if p.user:
            return p.user
        if call.request.user:
            return call.request.user
        return call.headers.get(self._user_header) if call.headers else None

    def plan(self, call: Call) -> Plan:
        request = call.request
        # `chain_of`, its usual case inlined: the model is a route or a deployment
        chain = self._chains.get(request.model) or self.chain_of(call)
        deps, default_cap = self._chain_info[chain]
        cap = request.max_tokens if request.max_tokens is not None else default_cap
        counted: dict[str, int] = {}
        estimator = self._estimator
        info = self._dep_info
        demands: dict[str, Demand] = {}
        for name in chain:
            encoding, factor, _, _ = info[name]
            demands[name] = estimator.demand_in(request, encoding, factor, cap, counted)
        if demands:
            if len(demands) == 1:
                demand = demands[chain[0]]
            else:
                demand = Demand(
                    max(d.input_tokens for d in demands.values()),
                    max(d.output_tokens for d in demands.values()),
                )
            priced: tuple[Deployment, ...] = deps
        else:  # the model is unknown here (the terminal will say so); reserve the dearest case
            priced = self._any_chat
            demand = Demand(
                max(
                    (self._estimator.demand(request, d, cap, counted).input_tokens for d in priced),
                    default=0,
                ),
                cap * max(request.n, 1),
            )
        worst = self._worst_micro(priced, demands, demand)
        if self.per_request is not None:  # most configs set no per-request budget
            self._check_request(demand, worst)
        caller = self._caller(call)
        items = caller.items(demand, worst)
        dep_items: dict[str, tuple[Item, ...]] = {}
        if self._own_limits:
            for name in chain:
                protos = info[name][3]
                if protos is not None:
                    dep_items[name] = tuple(fill(protos, demands[name]))
        return Plan(
            chain,
            demands,
            demand,
            cap,
            items,
            dep_items,
            worst,
            caller,
        )

    def _worst_micro(
        self, deps: tuple[Deployment, ...], demands: dict[str, Demand], fallback: Demand
    ) -> int:
        if not self._budgets_on:
            return 0
        worst = 0
        info, known = self._dep_info, self._worst
        for dep in deps:
            price = info[dep.name][2]
            if price is not None:
                d = demands.get(dep.name, fallback)
                key = (dep.name, d.input_tokens, d.output_tokens)
                cost = known.get(key)
                if cost is None:
                    if len(known) >= _MAX_WORST:
                        known.clear()  # a bound, not an eviction policy
                    cost = known[key] = worst_case_micro(d.input_tokens, d.output_tokens, price)
                if cost > worst:  # max(), without the generic builtin call
                    worst = cost
        return worst

    def _check_request(self, demand: Demand, worst_micro: int) -> None:
        limit = self.per_request
        if not self._budgets_on or limit is None:
            return
        if limit.usd is not None and worst_micro > limit.usd * 1_000_000:
            raise BudgetExceeded(
                f"This request may cost up to ${worst_micro / 1e6:.6f}, over the per-request "
                f"budget of ${limit.usd}. Lower max_tokens or shorten the prompt.",
                tier="request",
                limit=f"usd/request={limit.usd}",
            )
        if limit.tokens is not None and demand.total > limit.tokens:
            raise BudgetExceeded(
                f"This request may use up to {demand.total} tokens, over the per-request budget "
                f"of {limit.tokens}. Lower max_tokens or shorten the prompt.",
                tier="request",
                limit=f"tokens/request={limit.tokens}",
            )

    def _caller(self, call: Call) -> _Caller:
        p = call.principal
        # `user_of`, inlined (the same first of the three that is set)
        user = (
            p.user
            or call.request.user
            or (call.headers.get(self._user_header) if call.headers else None)
        )
        ident = (p.tenant, p.key_id, user, p.team, p.limits, p.budgets)
        caller = self._callers.get(ident)
        if caller is None:
            if len(self._callers) >= _MAX_CALLERS:
                self._callers.clear()  # rebuilt on demand: a bound, not an eviction policy
            caller = self._callers[ident] = _Caller(self._caller_protos(call, user))
        return caller

    def _caller_protos(self, call: Call, user: str | None) -> tuple[Item, ...]:
        p = call.principal
        tenant = esc(p.tenant)
        lease = self._lease
        items: list[Item] = []
        if self._limits_on:
            if p.key_id is not None:
                spec = self.key.merged(p.limits)
                items += rate_protos("key", esc(p.key_id), spec, lease)
            if user is not None and self.user is not None:
                items += rate_protos("user", f"{tenant}:{esc(user)}", self.user, lease)
            team_spec = self.teams.get(p.team, self.team) if p.team is not None else None
            if team_spec is not None and p.team is not None:
                items += rate_protos("team", f"{tenant}:{esc(p.team)}", team_spec, lease)
            if self.global_ is not None:
                items += rate_protos("global", "all", self.global_, lease)
        if self._budgets_on:
            if p.key_id is not None:
                own = p.budgets if p.budgets is not None else self.b_key
                items += budget_items("key", esc(p.key_id), own, 0, 0)
            if user is not None:
                items += budget_items("user", f"{tenant}:{esc(user)}", self.b_user, 0, 0)
            if p.team is not None:
                team_b = self.b_teams.get(p.team, self.b_team)
                items += budget_items("team", f"{tenant}:{esc(p.team)}", team_b, 0, 0)
            items += budget_items("global", "all", self.b_global, 0, 0)
        return tuple(items)


#: (tenant, key id, user, team, the key's own limits, the key's own budgets)
_CallerId = tuple[str, str | None, str | None, str | None, LimitSpec | None, object]
#: distinct callers remembered per Planner (each ~1 KB)
_MAX_CALLERS = 10_000
#: worst-case costs remembered per Planner (each ~200 bytes)
_MAX_WORST = 4096


class _Caller:
    """One caller's items. The last call's filled items are kept: a caller's next call with
    the same amounts (the same prompt size and cap) reuses them as they are."""

    __slots__ = (
        "_last",
        "_last_items",
        "budget_slots",
        "budgets",
        "header_slots",
        "keys",
        "protos",
    )

    def __init__(self, protos: tuple[Item, ...]) -> None:
        self.protos = protos
        self.keys = tuple(p.key for p in protos)
        self.header_slots = header_slots(protos)
        self.budget_slots = tuple(i for i, p in enumerate(protos) if p.budget)
        self.budgets = bool(self.budget_slots)
        self._last: tuple[int, int, int] | None = None
        self._last_items: tuple[Item, ...] = ()

    def items(self, demand: Demand, worst: int) -> tuple[Item, ...]:
        amounts = (demand.input_tokens, demand.output_tokens, worst)
        if amounts != self._last:
            self._last_items = tuple(fill(self.protos, demand, worst))
            self._last = amounts
        return self._last_items
