-- headway breaker_cas_v1: compare-and-set of one deployment's breaker state.
--
-- The breaker's transitions are computed in Python by a pure state machine
-- (headway.routing.breaker); this script only makes the write atomic across replicas, so
-- there is one state machine, not a second copy in Lua.
--
-- KEYS[1]  the breaker hash, e.g. headway:breaker:{gpt-4o}  (fields: v = version, s = state JSON)
-- ARGV[1]  the version the caller computed from ("0" when it saw no state)
-- ARGV[2]  the new version
-- ARGV[3]  the new state JSON
-- ARGV[4]  key TTL in milliseconds (derived from the breaker's window and cooldown)
--
-- Returns {1, new_version, ""} when written, or {0, current_version, current_state} when
-- another replica wrote first; the caller recomputes from the returned state and tries again.
local cur = redis.call('HMGET', KEYS[1], 'v', 's')
local version = cur[1] or '0'
if version ~= ARGV[1] then
  return {0, version, cur[2] or ''}
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, ARGV[2], ''}
