"""Lua scripts of the Redis store. Each runs atomically in Redis and touches only the keys of one team,
which share a hash tag (`{team}`), so they run unchanged on Redis Cluster.

Budget account layout (`<account>` = `<prefix>{team}:kind:name:b:<period window>`):

- `<account>` hash: `spent`, `reserved` (sum of live holds), `alert:<threshold>` markers;
- `<account>:h` sorted set of holds: member `<reservation id>|<amount>`, score = deadline in ms; and
  markers of holds that are gone but must be known for a while: `~<member>` a hold that lapsed
  unsettled (a late settle still counts its spend), `x<member>` a reservation cancelled before it
  landed (a late copy of it changes nothing); their score is when they are forgotten.

A hold whose deadline passed was leaked (its process died, or never settled): every script that reads
an account first drops such holds and gives their amount back (`SWEEP`). Settling consumes the hold,
so a settle retried after a lost reply finds nothing and changes nothing. Both keys expire with the
period (or after idling, for task budgets).

Concurrency leases: `<prefix>{team}:kind:name:c` sorted set, member = lease id, score = deadline in ms.

Rate-limit counters: `<prefix>{team}:kind:name[:model]:r:<rpm|tpm>:<window s>` hash: `i` the window
number (`now_ms // window_ms`), `c` its count, `p` the count of window `i - 1`; it expires two windows
after its last change, when nothing in it can count any more.
"""

from __future__ import annotations

from policies.state.base import LAPSED_KEEP_MS

# Drop holds whose deadline passed and give their amounts back, remembering each as lapsed (`~`);
# drop markers whose time is up. Needs `now` (ms) in scope.
_SWEEP = f"""
local function sweep(account, holds)
  local stale = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  if #stale > 0 then
    local freed = 0
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
    for _, member in ipairs(stale) do
      local mark = string.sub(member, 1, 1)
      if mark ~= '~' and mark ~= 'x' then
        freed = freed + tonumber(string.match(member, '|(%d+)$'))
        redis.call('ZADD', holds, now + {LAPSED_KEEP_MS}, '~' .. member)
      end
    end
    if freed > 0 and redis.call('HINCRBY', account, 'reserved', -freed) < 0 then
      redis.call('HSET', account, 'reserved', 0)
    end
  end
end
"""

# KEYS: account_1, holds_1, account_2, holds_2, ...
# ARGV: now_ms, deadline_ms, member, amount, then per account: cap, expire_at (unix s, 0 = never)
# Returns {0, used_1, used_2, ...} when every account had room (and holds the amount now; used_i is
# its spent + reserved before), else {index, spent, reserved} of the first account without room (and
# nothing changed), or {-1} when the reservation was cancelled before it got here (nothing changed).
# A second copy of the same reservation (its first reply was lost) changes nothing either.
RESERVE = (
    "local now = tonumber(ARGV[1])\n"
    + _SWEEP
    + """
if redis.call('ZSCORE', KEYS[2], 'x' .. ARGV[3]) then
  return {-1}
end
local amount = tonumber(ARGV[4])
local n = #KEYS / 2
local used = {0}
if redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  for i = 1, n do
    local v = redis.call('HMGET', KEYS[2 * i - 1], 'spent', 'reserved')
    used[i + 1] = math.max(0, (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0) - amount)
  end
  return used
end
for i = 1, n do
  local account = KEYS[2 * i - 1]
  sweep(account, KEYS[2 * i])
  local v = redis.call('HMGET', account, 'spent', 'reserved')
  local spent = tonumber(v[1]) or 0
  local reserved = tonumber(v[2]) or 0
  if spent + reserved + amount > tonumber(ARGV[3 + 2 * i]) then
    return {i, spent, reserved}
  end
  used[i + 1] = spent + reserved
end
for i = 1, n do
  local account, holds = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HINCRBY', account, 'reserved', amount)
  redis.call('ZADD', holds, ARGV[2], ARGV[3])
  local expire_at = tonumber(ARGV[4 + 2 * i])
  if expire_at > 0 then
    redis.call('EXPIREAT', account, expire_at)
    redis.call('EXPIREAT', holds, expire_at)
  else
    redis.call('PERSIST', holds)  -- a cancel marker may have created it with the marker's expiry
  end
end
return used
"""
)

# KEYS: as RESERVE.
# ARGV: member, held amount, actual amount, then per account: expire_at, alert count k, k x (label, level).
# Consumes the hold (live, or remembered as lapsed), adds the actual spend, and returns
# {index, label, spent, ...} for each alert level the spend reached for the first time in this account
# (HSETNX: once, cluster-wide). Where the hold is gone (settled already), nothing changes: retrying a
# settle whose reply was lost is safe.
SETTLE = """
local member = ARGV[1]
local held = tonumber(ARGV[2])
local actual = ARGV[3]
local crossed = {}
local a = 4
for i = 1, #KEYS / 2 do
  local account, holds = KEYS[2 * i - 1], KEYS[2 * i]
  local expire_at = tonumber(ARGV[a])
  local alerts = tonumber(ARGV[a + 1])
  a = a + 2
  local found = redis.call('ZREM', holds, member) == 1
  if found then
    if redis.call('HINCRBY', account, 'reserved', -held) < 0 then
      redis.call('HSET', account, 'reserved', 0)
    end
  else
    found = redis.call('ZREM', holds, '~' .. member) == 1
  end
  if found then
    local spent = redis.call('HINCRBY', account, 'spent', actual)
    if expire_at > 0 then
      redis.call('EXPIREAT', account, expire_at)
      redis.call('EXPIREAT', holds, expire_at)
    end
    for _ = 1, alerts do
      local label, level = ARGV[a], tonumber(ARGV[a + 1])
      a = a + 2
      if spent >= level and redis.call('HSETNX', account, 'alert:' .. label, 1) == 1 then
        crossed[#crossed + 1] = i
        crossed[#crossed + 1] = label
        crossed[#crossed + 1] = spent
      end
    end
  else
    a = a + 2 * alerts
  end
end
return crossed
"""

# KEYS: as RESERVE. ARGV: member, amount, until_ms (the hold's deadline).
# Undoes a reservation whose reply was lost: drops the hold where it landed (giving its amount back),
# and leaves `x<member>` in the first account's holds until `until_ms`, which RESERVE checks, so a copy
# of the command that arrives later changes nothing.
CANCEL = """
local member, amount = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local account, holds = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', holds, member) == 1 then
    if redis.call('HINCRBY', account, 'reserved', -amount) < 0 then
      redis.call('HSET', account, 'reserved', 0)
    end
  end
  redis.call('ZREM', holds, '~' .. member)
end
local fresh = redis.call('EXISTS', KEYS[2]) == 0
redis.call('ZADD', KEYS[2], ARGV[3], 'x' .. member)
if fresh then
  redis.call('PEXPIREAT', KEYS[2], ARGV[3])
end
return 0
"""

# KEYS: account, holds. ARGV: now_ms. Returns {spent, reserved} after dropping leaked holds.
BALANCE = (
    "local now = tonumber(ARGV[1])\n"
    + _SWEEP
    + """
sweep(KEYS[1], KEYS[2])
local v = redis.call('HMGET', KEYS[1], 'spent', 'reserved')
return {tonumber(v[1]) or 0, tonumber(v[2]) or 0}
"""
)

# Reads rate-limit counter `key` as of window number `index`: its previous and current counts, the
# window it was last written in (nil: never) and the window it is in now. A caller whose clock is
# behind (another replica moved the counter on) counts in the newer window, and never moves it back.
_WINDOW = """
local function counts(key, index)
  local v = redis.call('HMGET', key, 'i', 'c', 'p')
  local at, current, previous = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if at and at >= index then
    return previous, current, at, at
  end
  if at == index - 1 then previous = current else previous = 0 end
  return previous, 0, at, index
end
local function store(key, index, previous, current, window)
  redis.call('HSET', key, 'i', index, 'c', current, 'p', previous)
  redis.call('PEXPIRE', key, 2 * window)
end
"""

# KEYS: n counters, then lease sets.
# ARGV: now_ms, window_ms, n, member, lease_deadline_ms, lease_key_expire_at_ms, then per counter:
# limit, amount; then per lease set: limit.
# Returns {status, which, previous_1, current_1, ...} (each counter's counts before the call): status 0
# when everything had room (and holds the call now), 1 when counter `which` had none, 2 when lease
# set `which` was full (and then nothing changed).
HIT = (
    _WINDOW
    + """
local now, window, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local index = math.floor(now / window)
local elapsed = now - index * window
local out = {0, 0}
local at = {}
for i = 1, n do
  local previous, current, _, now_at = counts(KEYS[i], index)
  at[i] = now_at
  out[#out + 1] = previous
  out[#out + 1] = current
  local into = now_at == index and elapsed or 0
  local used = current + math.floor(previous * (window - into) / window)
  if out[1] == 0 and used + tonumber(ARGV[6 + 2 * i]) > tonumber(ARGV[5 + 2 * i]) then
    out[1], out[2] = 1, i
  end
end
if out[1] ~= 0 then
  return out
end
for j = n + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', now)
  if redis.call('ZCARD', KEYS[j]) >= tonumber(ARGV[6 + n + j]) then
    out[1], out[2] = 2, j - n
    return out
  end
end
for i = 1, n do
  store(KEYS[i], at[i], out[1 + 2 * i], out[2 + 2 * i] + tonumber(ARGV[6 + 2 * i]), window)
end
for j = n + 1, #KEYS do
  redis.call('ZADD', KEYS[j], ARGV[5], ARGV[4])
  redis.call('PEXPIREAT', KEYS[j], ARGV[6])
end
return out
"""
)

# KEYS: n counters, then lease sets.
# ARGV: now_ms, window_ms, n, member, hit_window, then per counter: limit, amount.
# A negative amount comes off the window that holds the hit (if it is still counted); a positive one
# is added to the current window, up to the limit. Then lease `member` is removed from every set.
ADJUST = (
    _WINDOW
    + """
local now, window, n, hit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local index = math.floor(now / window)
local elapsed = now - index * window
for i = 1, n do
  local previous, current, at, now_at = counts(KEYS[i], index)
  local limit, amount = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  if amount < 0 then
    if hit == now_at then
      current = math.max(0, current + amount)
    elseif hit == now_at - 1 then
      previous = math.max(0, previous + amount)
    end
  else
    local into = now_at == index and elapsed or 0
    local room = limit - current - math.floor(previous * (window - into) / window)
    current = current + math.max(0, math.min(room, amount))
  end
  if at ~= nil or amount > 0 then
    store(KEYS[i], now_at, previous, current, window)
  end
end
for j = n + 1, #KEYS do
  redis.call('ZREM', KEYS[j], ARGV[4])
end
return 0
"""
)
