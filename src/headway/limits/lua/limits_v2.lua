-- headway limits, version 2 (limits_v2). Loaded once per server, called with EVALSHA.
-- Version 2 keeps version 1's keys and stored fields (a replica running either reads and writes
-- the same state); it takes each call's numbers packed in one argument and answers with one
-- string, because encoding and parsing ~40 RESP arguments and replies per call was a large part
-- of the gateway's CPU per request.
--
-- Two operations share the window arithmetic of headway/limits/window.py (keep them identical;
-- the contract suite in tests/limits runs this script and MemoryLimitStore side by side).
--
-- Common arguments
--   KEYS[i]  one key per item. All keys share one hash tag ({prefix}), so in Redis Cluster every
--            tier's keys live on one slot and a single call may touch them all.
--   ARGV[1]  operation: "reserve" | "settle"
--   ARGV[2]  time override in seconds; "" = the server's TIME (the override exists for tests)
--   ARGV[3]  reservation id (the member a concurrency lease is stored under)
--   ARGV[4]  the operation's numbers, separated by single spaces (below)
--   Item kinds: "b" bucket (leaky bucket / GCRA: drains limit/period per second),
--               "w" window (counter reset at epoch-aligned boundaries of period seconds;
--                   period 0 never resets, period -1 is the UTC calendar month),
--               "c" concurrency (leases that end at settle or after period seconds)
--
-- reserve: check every item, charge all of them or none
--   ARGV[4]  "M G size_1 .. size_G" then 4 values per item, in KEYS order (mandatory first):
--            "kind limit period amount". M = number of mandatory items, G = number of
--            alternative groups (one per deployment of a chain; the first group that fits whole
--            is charged with the mandatory items), size_j = items in group j
--   returns "1 now choice used_1 .. used_k": reserved. choice = 1-based group (0 when
--            G = 0); used_* = levels after charging, mandatory items then the chosen group
--           "0 now index retry_after": nothing charged. index = 1-based item (over all KEYS)
--            that blocks; retry_after = seconds until it fits, -1 if it never will
--
-- settle: correct reserved items to real usage, release concurrency leases, and charge usage
--         that landed on items that were never reserved (a fallback deployment)
--   ARGV[4]  5 values per item, in KEYS order: "kind limit period delta anchor". delta =
--            actual - reserved, or the whole amount of an unreserved item; anchor = time of the
--            reservation, "-" = now
--   returns "now used_1 .. used_n"
--   A level never drops below zero; a window is corrected only while the window the amount was
--   reserved in is still current (after its boundary it is gone). An item whose delta is 0 (a
--   request counted as one request) is only read: a bucket drains the same whether or not its
--   drained level is written back, and skipping the write saves an HSET and a PEXPIRE.
--
-- State and TTLs (derived from the windows, +1 s)
--   bucket: hash {u = used, t = last write, r = "limit/period" its TTL was set for}; expires when
--           it would have drained to zero (a write that lowers the level keeps the longer TTL)
--   window: hash {u = used, w = window index}; expires at the end of the window (never for 0),
--           set by the window's first write
--   concurrency: sorted set {reservation id -> lease expiry}; expires with the newest lease
-- Numbers travel as text ("%.17g"; whole numbers as "%d", which is exact and costs a third of
-- "%.17g" in Redis's Lua): a Lua number in a reply would be truncated to an integer.

local function fmt(x)
  if x == math.floor(x) and x < 9007199254740992 and x > -9007199254740992 then
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

-- the next space-separated value of ARGV[4]
local next_value = string.gmatch(ARGV[4], '%S+')

local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local rid = ARGV[3]
-- formatting a number is a good part of the script's time: now is formatted once, and a level
-- written to a key is formatted once for the write and the reply
local nows = fmt(now)

-- (year, month) of a day counted from 1970-01-01 (H. Hinnant's civil_from_days)
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local month = mp - 9
  if mp < 10 then
    month = mp + 3
  end
  local year = yoe + era * 400
  if month <= 2 then
    year = year + 1
  end
  return year, month
end

-- days from 1970-01-01 to the first of `month` of `year`
local function first_day(year, month)
  local y = year
  if month <= 2 then
    y = y - 1
  end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mm = month + 9
  if month > 2 then
    mm = month - 3
  end
  local doy = math.floor((153 * mm + 2) / 5)
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end

local function windex(t, p)
  if p == -1 then
    local y, mo = civil(math.floor(t / 86400))
    return y * 12 + mo - 1
  end
  if p > 0 then
    return math.floor(t / p)
  end
  return 0
end

-- seconds from now until the current window ends; -1 = never
local function wend(p)
  if p == -1 then
    local i = windex(now, p) + 1
    return first_day(math.floor(i / 12), i % 12 + 1) * 86400 - now
  end
  if p > 0 then
    return (windex(now, p) + 1) * p - now
  end
  return -1
end

-- TTLs are set only when they must grow (a PEXPIRE was a third of the commands per item).
-- A bucket's TTL, set when it was written with rate r (field r = "limit/period"), covers the
-- level it was written with draining away at that rate; so a write at the same rate that does
-- not raise the drained level (a settle that corrects downwards, a charge of 0) keeps a TTL that
-- is long enough. drained[key] is that level as read (nil: new key or another rate).
-- stale[key] marks a window key that is new or holds an older window: a window's TTL is the end
-- of the window, the same for every write within one window, so it is set once per window.
local drained, stale = {}, {}

local function bucket_level(key, lim, p, rate)
  local s = redis.call('HMGET', key, 'u', 't', 'r')
  local used = tonumber(s[1]) or 0
  local ts = tonumber(s[2]) or now
  if used > 0 and now > ts then
    used = math.max(0, used - (now - ts) * lim / p)
  end
  if s[3] == rate then
    drained[key] = used
  end
  return used
end

local function window_level(key, p)
  local s = redis.call('HMGET', key, 'u', 'w')
  if tonumber(s[2]) == windex(now, p) then
    return tonumber(s[1]) or 0
  end
  stale[key] = true
  return 0
end

local function put_bucket(key, used, lim, p, rate)
  local was, us = drained[key], fmt(used)
  if was ~= nil and used <= was then
    redis.call('HSET', key, 'u', us, 't', nows)
  else
    redis.call('HSET', key, 'u', us, 't', nows, 'r', rate)
    redis.call('PEXPIRE', key, math.ceil(used * p / lim * 1000) + 1000)
  end
  drained[key] = used
  return us
end

local function put_window(key, used, p)
  local us = fmt(used)
  redis.call('HSET', key, 'u', us, 'w', string.format('%d', windex(now, p)))
  if stale[key] then
    local left = wend(p)
    if left >= 0 then
      redis.call('PEXPIRE', key, math.ceil(left * 1000) + 1000)
    end
  end
  stale[key] = false
  return us
end

if ARGV[1] == 'settle' then
  local out = {nows}
  for i = 1, #KEYS do
    local key, k, ls, ps = KEYS[i], next_value(), next_value(), next_value()
    local lim, p = tonumber(ls), tonumber(ps)
    local delta, anchor = tonumber(next_value()), tonumber(next_value()) or now
    if k == 'b' then
      local rate = ls .. '/' .. ps
      local used = math.max(0, bucket_level(key, lim, p, rate) + delta)
      if delta ~= 0 then
        out[#out + 1] = put_bucket(key, used, lim, p, rate)
      else
        out[#out + 1] = fmt(used)
      end
    elseif k == 'w' then
      local used = window_level(key, p)
      if delta ~= 0 and windex(anchor, p) == windex(now, p) then
        out[#out + 1] = put_window(key, math.max(0, used + delta), p)
      else
        out[#out + 1] = fmt(used)
      end
    else
      redis.call('ZREM', key, rid)
      redis.call('ZREMRANGEBYSCORE', key, '-inf', nows)
      out[#out + 1] = redis.call('ZCARD', key)
    end
  end
  return table.concat(out, ' ')
end

-- reserve
local m = tonumber(next_value())
local g = tonumber(next_value())
local sizes = {}
for j = 1, g do
  sizes[j] = tonumber(next_value())
end

local kind, limit, period, amount, level, rate = {}, {}, {}, {}, {}, {}
for i = 1, #KEYS do
  local k, ls, ps = next_value(), next_value(), next_value()
  kind[i], limit[i], period[i], amount[i] = k, tonumber(ls), tonumber(ps), tonumber(next_value())
  rate[i] = ls .. '/' .. ps
end

-- item i's level now, and seconds until its amount fits (0 = fits now, -1 = never)
local function probe(i)
  local key, k, lim, p, amt = KEYS[i], kind[i], limit[i], period[i], amount[i]
  local used
  if k == 'b' then
    used = bucket_level(key, lim, p, rate[i])
  elseif k == 'w' then
    used = window_level(key, p)
  else
    -- dropping expired leases changes no outcome, so it may happen before the decision
    redis.call('ZREMRANGEBYSCORE', key, '-inf', nows)
    used = redis.call('ZCARD', key)
  end
  level[i] = used
  if amt > lim then
    return -1
  end
  if used + amt <= lim then
    return 0
  end
  if k == 'b' then
    return (used + amt - lim) * p / lim
  elseif k == 'w' then
    return wend(p)
  end
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(first[2]) - now
end

local worst, worst_i = 0, 0
for i = 1, m do
  local w = probe(i)
  if w < 0 then
    return '0 ' .. nows .. ' ' .. i .. ' -1'
  end
  if w > worst then
    worst, worst_i = w, i
  end
end

local choice, choice_off = 0, 0
if g > 0 then
  local best, best_i, never_i = -1, 0, 0
  local off = m
  for j = 1, g do
    local gw, gi, ever = 0, 0, true
    for k = 1, sizes[j] do
      local w = probe(off + k)
      if w < 0 then
        ever = false
        if never_i == 0 then
          never_i = off + k
        end
        break
      end
      if w > gw then
        gw, gi = w, off + k
      end
    end
    if ever and gi == 0 then
      choice, choice_off = j, off
      break
    end
    if ever and (best < 0 or gw < best) then
      best, best_i = gw, gi
    end
    off = off + sizes[j]
  end
  if choice == 0 then
    if best < 0 then
      return '0 ' .. nows .. ' ' .. never_i .. ' -1'
    end
    if best > worst then
      worst, worst_i = best, best_i
    end
  end
end

if worst_i > 0 then
  return '0 ' .. nows .. ' ' .. worst_i .. ' ' .. fmt(worst)
end

local out = {1, nows, choice}
local function charge(i)
  local key, k, lim, p = KEYS[i], kind[i], limit[i], period[i]
  if k == 'b' then
    out[#out + 1] = put_bucket(key, level[i] + amount[i], lim, p, rate[i])
  elseif k == 'w' then
    out[#out + 1] = put_window(key, level[i] + amount[i], p)
  else
    redis.call('ZADD', key, fmt(now + p), rid)
    redis.call('PEXPIRE', key, math.ceil(p * 1000) + 1000)
    out[#out + 1] = level[i] + 1
  end
end

for i = 1, m do
  charge(i)
end
if choice > 0 then
  for k = 1, sizes[choice] do
    charge(choice_off + k)
  end
end
return table.concat(out, ' ')
