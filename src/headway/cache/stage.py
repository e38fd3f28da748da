"""The cache stage: exact lookup, then semantic, then the rest of the pipeline; store on the way out.

Controls (request header `x-headway-cache`, parsed into `call.cache_directive`):
- `no-store`: neither read nor write the cache for this call;
- `no-cache`: do not answer from the cache, but store the fresh answer;
- `stale-ok`: an expired entry (within `max_stale_s`) may answer, flagged `stale`.

What happened goes to `call.served.cache` (miss | exact | semantic | stale, or off when the call
is not cacheable), `cache_similarity` and `cache_age_s`. A streamed answer is stored only after
its final chunk; a stream that fails or is abandoned halfway stores nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from headway.cache.config import CacheConfig
from headway.cache.entry import Decoder, Entry, StreamAssembler, encode, replay
from headway.cache.keys import request_key, scope_of, single_turn_text
from headway.cache.store import CacheStore, MemoryStore, RedisStore
from headway.cache.ttl import Decision, TtlPolicy
from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.context import Call, Served
from headway.errors import Unavailable
from headway.pipeline import ChatHandler, StreamHandler
from headway.services import Services
from headway.stores.redis import Detached, write_follows
from headway.types import ChatChunk, ChatResponse

if TYPE_CHECKING:
    # the semantic tier (and numpy) is imported only when it is enabled (see factory.py)
    from headway.cache.semantic import Lookup, SemanticCache

log = logging.getLogger("headway.cache")

#: seconds between two warnings about an unreachable cache store (an outage would log per call)
WARN_EVERY_S = 10.0
_warned_at = [float("-inf")]


def _store_down(exc: Unavailable) -> None:
    """The cache store could not be reached: the call goes on without the cache, as a miss
    (a cache is an optimisation; its outage must not become the gateway's). Warn now and then."""
    now = time.monotonic()
    if now - _warned_at[0] >= WARN_EVERY_S:
        _warned_at[0] = now
        log.warning("cache store unavailable, answering without the cache: %s", exc)


@dataclass(slots=True)
class _Plan:
    decision: Decision
    key: str
    tenant: str
    #: the semantic scope; "" when the semantic tier is off (nothing reads it then)
    scope_id: str
    text: str | None  # single-turn text when the semantic cache applies
    lookup: Lookup | None = None


class CacheStage:
    name = "cache"

    def __init__(
        self,
        cfg: CacheConfig,
        store: CacheStore,
        semantic: SemanticCache | None,
        clock: Clock,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.semantic = semantic
        self.policy = TtlPolicy(cfg)
        self._clock = clock
        self._closed = False
        self._decode = Decoder()
        self._per_tenant = cfg.scope == "tenant"
        #: an exact-only Redis store: read without `_lookup`'s coroutines, and a fresh answer's
        #: SET need not be awaited when an outer stage's awaited write follows it
        #: (`_store_detached`)
        self._detach = semantic is None and isinstance(store, RedisStore)
        self._sink = Detached(_store_down)

    # ---- planning -----------------------------------------------------------------------------

    def _tenant(self, call: Call) -> str:
        return call.principal.tenant if self._per_tenant else "*"

    def _plan(self, call: Call) -> _Plan | None:
        if call.cache_directive == "no-store":
            return None
        decision = self.policy.cacheable(call.request, call.task)
        if not decision.ttl_s > 0:  # `store`, without the property's call
            return None
        request = call.request
        tenant = call.principal.tenant if self._per_tenant else "*"  # `_tenant`, inlined
        key = request_key(request, tenant)
        if self.semantic is None:
            # the exact tier needs only the key: the scope (two more hashes) is semantic-only
            return _Plan(decision, key, tenant, "", None)
        text = None
        route = self.policy.route(request.model)
        if route is None or route.semantic is not False:
            text = single_turn_text(request)
            if text is None and not self.cfg.semantic.single_turn_only:
                text = "\n".join(m.text() for m in request.messages if m.role == "user")
        scope = scope_of(request, tenant)
        fmt = (
            "-" if request.response_format is None else str(sorted(request.response_format.items()))
        )
        return _Plan(decision, key, tenant, f"{scope.id()}|{fmt}", text)

    async def _entry(self, key: str) -> Entry | None:
        raw = await self.store.get(key)
        return self._decode(key, raw) if raw is not None else None

    async def _find(self, call: Call, plan: _Plan) -> ChatResponse | None:
        """A cached answer for the call, recording how it was found; None on a miss."""
        now = self._clock.time()
        served = call.served
        stale_ok = call.cache_directive == "stale-ok"
        raw = await self.store.get(plan.key)  # `_entry` inlined: one coroutine less per hit
        entry = self._decode(plan.key, raw) if raw is not None else None
        if entry is not None and entry.fresh(now):
            served.cache, served.cache_age_s = "exact", entry.age(now)
            return _answer(served, entry)
        stale = entry if entry is not None and stale_ok else None
        if self.semantic is not None and plan.text is not None:
            plan.lookup = await self.semantic.lookup(plan.scope_id, plan.text, now=now)
            hit = plan.lookup.hit
            if hit is not None:
                found = await self._entry(hit.key)
                if found is None:
                    await self.semantic.index.remove(self.semantic.scope(plan.scope_id), hit.key)
                elif found.fresh(now):
                    served.cache, served.cache_age_s = "semantic", found.age(now)
                    served.cache_similarity = round(hit.similarity, 4)
                    served.headers["x-headway-cache-similarity"] = f"{hit.similarity:.4f}"
                    return _answer(served, found)
                elif stale is None and stale_ok:
                    stale = found
        if stale is not None:
            served.cache, served.cache_age_s = "stale", stale.age(now)
            return _answer(served, stale)
        served.cache = "miss"
        return None

    async def _lookup(self, call: Call, plan: _Plan) -> ChatResponse | None:
        """`_find`, with an unreachable store taken as a miss."""
        try:
            return await self._find(call, plan)
        except Unavailable as exc:
            _store_down(exc)
            call.served.cache = "miss"
            return None

    def _find_now(self, call: Call, plan: _Plan, raw: bytes | None) -> ChatResponse | None:
        """`_find` without a semantic tier, of what the store holds (`raw`): nothing awaits
        once it was read, so no coroutine is made for it."""
        now = self._clock.time()
        served = call.served
        entry = self._decode(plan.key, raw) if raw is not None else None
        if entry is not None:
            if entry.fresh(now):
                served.cache, served.cache_age_s = "exact", entry.age(now)
                return _answer(served, entry)
            if call.cache_directive == "stale-ok":
                served.cache, served.cache_age_s = "stale", entry.age(now)
                return _answer(served, entry)
        served.cache = "miss"
        return None

    def _encoded(
        self, call: Call, plan: _Plan, response: ChatResponse
    ) -> tuple[bytes, float, float] | None:
        """The entry to store for `response` (its bytes, now, how long to keep it), or None
        when it is not stored."""
        decision = self.policy.for_response(plan.decision, response)
        if not decision.ttl_s > 0:  # `store`, without the property's call
            return None
        now = self._clock.time()
        entry = Entry(
            response, now, now + decision.ttl_s, plan.tenant, call.request.model, plan.text
        )
        raw = encode(entry)
        if len(raw) > self.cfg.max_entry_bytes:
            return None
        return raw, now, decision.ttl_s + self.cfg.max_stale_s

    async def _store(self, call: Call, plan: _Plan, response: ChatResponse) -> None:
        encoded = self._encoded(call, plan, response)
        if encoded is None:
            return
        raw, now, keep = encoded
        try:
            await self.store.set(plan.key, raw, keep_s=keep, now=now)
        except Unavailable as exc:
            _store_down(exc)  # the answer is the caller's all the same
            return
        if self.semantic is not None and plan.text is not None:
            from headway.cache.index import Meta

            vector = plan.lookup.vector if plan.lookup is not None else None
            if plan.lookup is None or plan.lookup.cacheable:
                await self.semantic.add(
                    plan.scope_id,
                    plan.key,
                    plan.text,
                    keep_until=now + keep,
                    meta=Meta(plan.tenant, call.request.model),
                    vector=vector,
                )

    def _store_detached(self, call: Call, plan: _Plan, response: ChatResponse) -> bool:
        """`_store` of an exact-only Redis store, with the SET written and its reply not
        awaited (a failure is reported by `_store_down`, as `_store` does). Only while an
        outer stage awaits a Redis write after this one (`write_follows`): that keeps the SET
        on its socket before the response, so a later request on any replica reads the entry.
        False when the SET could not be written so: `_store` it then."""
        encoded = self._encoded(call, plan, response)
        if encoded is None:
            return True
        raw, _, keep = encoded
        assert isinstance(self.store, RedisStore)
        return self.store.set_detached(plan.key, raw, keep_s=keep, sink=self._sink)

    # ---- the stage ----------------------------------------------------------------------------

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        plan = self._plan(call)
        if plan is None:
            return await nxt(call)
        # the in-process store without a semantic tier is read and written synchronously
        store = self.store
        memory = store if type(store) is MemoryStore and self.semantic is None else None
        if call.cache_directive != "no-cache":
            if memory is not None:
                cached = self._find_now(call, plan, memory.get_now(plan.key))
            elif self._detach:
                # an exact-only Redis store: `_lookup` without its two coroutines
                try:
                    raw = await self.store.get(plan.key)
                except Unavailable as exc:
                    _store_down(exc)
                    raw = None
                cached = self._find_now(call, plan, raw)
            else:
                cached = await self._lookup(call, plan)
            if cached is not None:
                return cached
        else:
            call.served.cache = "miss"
        response = await nxt(call)
        if memory is None:
            if not (
                self._detach and write_follows.get() and self._store_detached(call, plan, response)
            ):
                await self._store(call, plan, response)
        else:
            encoded = self._encoded(call, plan, response)
            if encoded is not None:
                raw, now, keep = encoded
                memory.set_now(plan.key, raw, keep_s=keep, now=now)
        return response

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        plan = self._plan(call)
        if plan is None:
            async for chunk in nxt(call):
                yield chunk
            return
        if call.cache_directive != "no-cache":
            cached = await self._lookup(call, plan)
            if cached is not None:
                for chunk in replay(cached):
                    yield chunk
                return
        else:
            call.served.cache = "miss"
        assembler = StreamAssembler()
        async for chunk in nxt(call):
            assembler.add(chunk)
            yield chunk
        # Reached only when the upstream stream ended normally; an error or a caller that
        # went away leaves the generator before this line, so partial answers are never stored.
        if assembler.complete:
            await self._store(call, plan, assembler.response())

    # ---- for the degradation ladder and the admin API ----------------------------------------

    async def lookup_stale(self, call: Call) -> tuple[ChatResponse, float] | None:
        """Any kept answer for the call, fresh or expired (up to max_stale_s): (response, age)."""
        plan = self._plan(call)
        if plan is None:
            return None
        now = self._clock.time()
        try:
            entry = await self._entry(plan.key)
        except Unavailable as exc:  # the ladder's next rung, as when nothing is kept
            _store_down(exc)
            return None
        if entry is None and self.semantic is not None and plan.text is not None:
            lookup = await self.semantic.lookup(plan.scope_id, plan.text, now=now)
            if lookup.hit is not None:
                entry = await self._entry(lookup.hit.key)
        if entry is None:
            return None
        return entry.answer(), entry.age(now)

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int:
        """Drop the entries of a tenant and/or a model (route alias or model name)."""
        count = await self.store.purge(tenant=tenant, model=model)
        if self.semantic is not None:
            await self.semantic.index.purge(tenant=tenant, model=model)
        return count

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.store.aclose()
        if self.semantic is not None:
            await self.semantic.index.aclose()
            await self.semantic.embedder.aclose()


def _answer(served: Served, entry: Entry) -> ChatResponse:
    response = entry.answer()
    served.usage = response.usage
    return response


def build(runtime: RuntimeConfig, services: Services) -> CacheStage | None:
    from headway.cache.factory import build_stage

    return build_stage(runtime, services)
