"""Lua scripts of the Redis store. Each runs atomically in Redis and touches only the keys of one team,
which share a hash tag (`{team}`), so they run unchanged on Redis Cluster.

Budget account layout (`<account>` = `<prefix>{team}:kind:name:b:<period window>`):

- `<account>` hash: `spent`, `reserved` (sum of live holds), `alert:<threshold>` markers;
- `<account>:h` sorted set of holds: member `<reservation id>|<amount>`, score = deadline in ms.

A hold whose deadline passed was leaked (its process died, or never settled): every script that reads
an account first drops such holds and gives their amount back (`SWEEP`). Both keys expire with the
period (or after idling, for task budgets).

Concurrency leases: `<prefix>{team}:kind:name:c` sorted set, member = lease id, score = deadline in ms.
"""

from __future__ import annotations

# Drop holds whose deadline passed and give their amounts back. Needs `now` (ms) in scope.
_SWEEP = """
local function sweep(account, holds)
  local stale = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  if #stale > 0 then
    local freed = 0
    for _, member in ipairs(stale) do
      freed = freed + tonumber(string.match(member, '|(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
    if redis.call('HINCRBY', account, 'reserved', -freed) < 0 then
      redis.call('HSET', account, 'reserved', 0)
    end
  end
end
"""

# KEYS: account_1, holds_1, account_2, holds_2, ...
# ARGV: now_ms, deadline_ms, member, amount, then per account: cap, expire_at (unix s, 0 = never)
# Returns {0, used_1, used_2, ...} when every account had room (and holds the amount now; used_i is
# its spent + reserved before), else {index, spent, reserved} of the first account without room (and
# nothing changed).
RESERVE = (
    "local now = tonumber(ARGV[1])\n"
    + _SWEEP
    + """
local amount = tonumber(ARGV[4])
local n = #KEYS / 2
local used = {0}
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
  end
end
return used
"""
)

# KEYS: as RESERVE.
# ARGV: member, held amount, actual amount, then per account: expire_at, alert count k, k x (label, level).
# Drops the hold (if a sweep has not already), adds the actual spend, and returns {index, label, ...}
# {index, label, spent, ...} for each alert level the spend reached for the first time in this account
# (HSETNX: once, cluster-wide).
SETTLE = """
local member = ARGV[1]
local held = tonumber(ARGV[2])
local actual = ARGV[3]
local crossed = {}
local a = 4
for i = 1, #KEYS / 2 do
  local account, holds = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', holds, member) == 1 then
    if redis.call('HINCRBY', account, 'reserved', -held) < 0 then
      redis.call('HSET', account, 'reserved', 0)
    end
  end
  local spent = redis.call('HINCRBY', account, 'spent', actual)
  local expire_at = tonumber(ARGV[a])
  local alerts = tonumber(ARGV[a + 1])
  a = a + 2
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
end
return crossed
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

# KEYS: lease sets. ARGV: now_ms, deadline_ms, member, key_expire_at_ms, then one limit per key.
# Returns 0 when every set had room (and holds the lease now), else the index of the first full one.
ACQUIRE = """
local now = ARGV[1]
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[4 + i]) then
    return i
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('PEXPIREAT', KEYS[i], ARGV[4])
end
return 0
"""

# KEYS: lease sets. ARGV: member.
RELEASE = """
for i = 1, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
return 0
"""
