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


def amount(measure: Measure, demand: Demand) -> int:
    if measure == "tokens":
        return demand.total
    if measure == "input":
        return demand.input_tokens
    if measure == "output":
        return demand.output_tokens
    return 1


def rate_items(
    tier: str, ident: str, spec: LimitSpec, demand: Demand, lease_s: float
) -> list[Item]:
    out: list[Item] = []
    for metric, period, measure in _RATES:
        limit = getattr(spec, metric)
        if limit is not None:
            key = f"{tier}:{ident}:{metric}"
            out.append(
                Item(key, "bucket", limit, period, amount(measure, demand), tier, measure, metric)
            )
    if spec.concurrency is not None:
        key = f"{tier}:{ident}:concurrency"
        out.append(
            Item(key, "concurrency", spec.concurrency, lease_s, 1, tier, "slots", "concurrency")
        )
    return out


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
        chain = self.chain_of(call)
        deps = tuple(self._deps[n] for n in chain)
        cap = self._estimator.output_cap(request, deps or self._any_chat)
        counted: dict[str, int] = {}
        demands = {d.name: self._estimator.demand(request, d, cap, counted) for d in deps}
        if demands:
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
        self._check_request(demand, worst)
        items = self._caller_items(call, demand, worst)
        dep_items: dict[str, tuple[Item, ...]] = {}
        if self._limits_on:
            for name in chain:
                spec = self.deployments.get(name)
                if spec is not None:
                    dep_items[name] = tuple(
                        rate_items("deployment", esc(name), spec, demands[name], self._lease)
                    )
        return Plan(chain, demands, demand, cap, tuple(items), dep_items, worst)

    def _worst_micro(
        self, deps: tuple[Deployment, ...], demands: dict[str, Demand], fallback: Demand
    ) -> int:
        if not self._budgets_on:
            return 0
        worst = 0
        for dep in deps:
            price = self._prices.get(dep.name)
            if price is not None:
                d = demands.get(dep.name, fallback)
                worst = max(worst, worst_case_micro(d.input_tokens, d.output_tokens, price))
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

    def _caller_items(self, call: Call, demand: Demand, worst: int) -> list[Item]:
        p = call.principal
        tenant = esc(p.tenant)
        user = self.user_of(call)
        lease = self._lease
        items: list[Item] = []
        if self._limits_on:
            if p.key_id is not None:
                spec = self.key.merged(p.limits)
                items += rate_items("key", esc(p.key_id), spec, demand, lease)
            if user is not None and self.user is not None:
                items += rate_items("user", f"{tenant}:{esc(user)}", self.user, demand, lease)
            team_spec = self.teams.get(p.team, self.team) if p.team is not None else None
            if team_spec is not None and p.team is not None:
                items += rate_items("team", f"{tenant}:{esc(p.team)}", team_spec, demand, lease)
            if self.global_ is not None:
                items += rate_items("global", "all", self.global_, demand, lease)
        if self._budgets_on:
            tokens = demand.total
            if p.key_id is not None:
                own = p.budgets if p.budgets is not None else self.b_key
                items += budget_items("key", esc(p.key_id), own, tokens, worst)
            if user is not None:
                items += budget_items("user", f"{tenant}:{esc(user)}", self.b_user, tokens, worst)
            if p.team is not None:
                team_b = self.b_teams.get(p.team, self.b_team)
                items += budget_items("team", f"{tenant}:{esc(p.team)}", team_b, tokens, worst)
            items += budget_items("global", "all", self.b_global, tokens, worst)
        return items
