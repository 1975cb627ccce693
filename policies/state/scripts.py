"""Lua scripts of the Redis store. Each runs atomically in Redis and touches only the keys of one team,
which share a hash tag (`{team}`), so they run unchanged on Redis Cluster. A call is admitted by one
script (ADMIT: its rate-limit counters, concurrency leases and budget holds together) and settled by
one (FINISH), which the store sends for many calls at once in a pipeline.

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
      if mark ~= '~' and mark ~= 'x' and mark ~= 's' then
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

# KEYS: account_1, holds_1, account_2, holds_2, ... ARGV: member, amount, until_ms (the hold's deadline).
# Undoes a reservation whose reply was lost: drops the hold where it landed (giving its amount back),
# and leaves `x<member>` in the first account's holds until `until_ms`, which RESERVE checks, so a copy
# of the admission that arrives later changes nothing.
CANCEL = """
local member, amount = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local account, holds = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', holds, member) == 1 then
    if amount > 0 and redis.call('HINCRBY', account, 'reserved', -amount) < 0 then
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

# KEYS: account, holds. ARGV: now_ms. Returns {spent, reserved, exists} after dropping leaked holds.
BALANCE = (
    "local now = tonumber(ARGV[1])\n"
    + _SWEEP
    + """
sweep(KEYS[1], KEYS[2])
local v = redis.call('HMGET', KEYS[1], 'spent', 'reserved')
return {tonumber(v[1]) or 0, tonumber(v[2]) or 0, redis.call('EXISTS', KEYS[1])}
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

# The members one admission adds to each lease set (`lease_members` in base.py).
_LEASES = """
local function lease_members(member, count)
  if count == 1 then
    return {member}
  end
  local out = {}
  for j = 1, count do
    out[j] = member .. '#' .. j
  end
  return out
end
"""

# KEYS: nr request counters and nt token counters, nl lease sets, na pairs of (account, holds).
# ARGV: now_ms, window_ms, nr, nt, nl, na, lease_member, deadline_ms, lease_key_expire_at_ms, hold_member,
# amount, near (0, or NEAR_CAP when the amounts are a cheap bound an exact count may replace), rebuild (1:
# an account that does not exist is answered as missing, to be rebuilt from the ledger first), lease count
# (the leases taken in each set: `lease_member` itself when 1, else `lease_member#1`..`#count`), then per
# counter: limit, amount; per lease set: limit; per account: cap, expire_at (unix s, 0 = never).
# Checks request counters, then lease sets, then token counters, then accounts; counts, leases and holds
# only if all have room. Returns {status, which, spent, reserved, previous_1, current_1, ...} (each
# counter's counts before the call), and when admitted each account's spent + reserved before, appended.
# status 0: admitted; 1: counter `which` had no room; 2: lease set `which` was full; 3: account `which`
# had no room (its spent, reserved); 4: refine (a token counter or account had no room for the bound, or
# an account is near its cap); 5: accounts are missing (their indexes follow the counts: rebuild them,
# then try again); -1: this admission's hold was cancelled before it got here. Only status 0
# changed anything. A second copy of an admission that holds money (its first reply was lost) changes
# nothing and answers 0.
ADMIT = (
    "local now = tonumber(ARGV[1])\n"
    + _SWEEP
    + _WINDOW
    + _LEASES
    + """
local window = tonumber(ARGV[2])
local nr, nt, nl, na = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local nc = nr + nt
local member, amount, near = ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])
local leases = lease_members(ARGV[7], tonumber(ARGV[14]))
local a0, c0 = nc + nl, 14
local l0 = c0 + 2 * nc
local b0 = l0 + nl
local out = {0, 0, 0, 0}
if na > 0 then
  local holds = KEYS[a0 + 2]
  if redis.call('ZSCORE', holds, 'x' .. member) then
    return {-1}
  end
  if redis.call('ZSCORE', holds, member) then
    for _ = 1, 2 * nc do
      out[#out + 1] = 0
    end
    for i = 1, na do
      local v = redis.call('HMGET', KEYS[a0 + 2 * i - 1], 'spent', 'reserved')
      out[#out + 1] = math.max(0, (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0) - amount)
    end
    return out
  end
end
local index = math.floor(now / window)
local elapsed = now - index * window
local at = {}
local over = 0
for i = 1, nc do
  local previous, current, _, now_at = counts(KEYS[i], index)
  at[i] = now_at
  out[#out + 1] = previous
  out[#out + 1] = current
  local into = now_at == index and elapsed or 0
  local used = current + math.floor(previous * (window - into) / window)
  if over == 0 and used + tonumber(ARGV[c0 + 2 * i]) > tonumber(ARGV[c0 + 2 * i - 1]) then
    over = i
  end
end
if over > 0 and over <= nr then
  out[1], out[2] = 1, over
  return out
end
for j = 1, nl do
  local key = KEYS[nc + j]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) + #leases > tonumber(ARGV[l0 + j]) then
    out[1], out[2] = 2, j
    return out
  end
end
if over > 0 then
  if near > 0 then out[1] = 4 else out[1], out[2] = 1, over end
  return out
end
if ARGV[13] == '1' then
  local missing = false
  for i = 1, na do
    if redis.call('EXISTS', KEYS[a0 + 2 * i - 1]) == 0 then
      missing = true
      out[#out + 1] = i
    end
  end
  if missing then
    out[1] = 5
    return out
  end
end
local used = {}
local close = false
for i = 1, na do
  local account = KEYS[a0 + 2 * i - 1]
  sweep(account, KEYS[a0 + 2 * i])
  local v = redis.call('HMGET', account, 'spent', 'reserved')
  local spent, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local room = tonumber(ARGV[b0 + 2 * i - 1]) - spent - reserved - amount
  if room < 0 then
    if near > 0 then out[1] = 4 else out[1], out[2], out[3], out[4] = 3, i, spent, reserved end
    return out
  end
  if room < near * (reserved + amount) then
    close = true
  end
  used[i] = spent + reserved
end
if close then
  out[1] = 4
  return out
end
for i = 1, nc do
  store(KEYS[i], at[i], out[3 + 2 * i], out[4 + 2 * i] + tonumber(ARGV[c0 + 2 * i]), window)
end
for j = 1, nl do
  for _, lease in ipairs(leases) do
    redis.call('ZADD', KEYS[nc + j], ARGV[8], lease)
  end
  redis.call('PEXPIREAT', KEYS[nc + j], ARGV[9])
end
for i = 1, na do
  local account, holds = KEYS[a0 + 2 * i - 1], KEYS[a0 + 2 * i]
  redis.call('HINCRBY', account, 'reserved', amount)
  redis.call('ZADD', holds, ARGV[8], member)
  local expire_at = tonumber(ARGV[b0 + 2 * i])
  if expire_at > 0 then
    redis.call('EXPIREAT', account, expire_at)
    redis.call('EXPIREAT', holds, expire_at)
  else
    redis.call('PERSIST', holds)  -- a cancel marker may have created it with the marker's expiry
  end
  out[#out + 1] = used[i]
end
return out
"""
)

# KEYS: n counters, nl lease sets, na pairs of (account, holds).
# ARGV: now_ms, window_ms, n, nl, na, hit_window, lease_member, hold_member, held, actual, admitted_ms,
# ended_ms, lease count, then per counter: limit, amount; then per account: expire_at, alert count k, k x
# (label, level).
# A hold lost with the account (Redis restarted, the account rebuilt from the ledger while the call ran:
# `seeded` is after `admitted_ms`) still counts its spend if the call ended after the rebuild read the
# ledger (`ended_ms >= seeded`), once (`s<member>` remembers it).
# Consumes the hold (live, or remembered as lapsed) and adds the actual spend, returning
# {index, label, spent, ...} for each alert level the spend reached for the first time in an account
# (HSETNX: once, cluster-wide); removes the lease from every set; then corrects the counters: a negative
# amount comes off the window that holds the hit (if it is still counted), a positive one is added to the
# current window up to the limit. Where the call holds a lease or money, the corrections apply only if this
# run found one of them: a finish retried after a lost reply changes nothing.
FINISH = (
    _WINDOW
    + _LEASES
    + """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local n, nl, na, hit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local member, held, actual = ARGV[8], tonumber(ARGV[9]), ARGV[10]
local admitted, ended = tonumber(ARGV[11]), tonumber(ARGV[12])
local a0 = n + nl
local found = nl == 0 and na == 0
local crossed = {}
local a = 14 + 2 * n
for i = 1, na do
  local account, holds = KEYS[a0 + 2 * i - 1], KEYS[a0 + 2 * i]
  local expire_at = tonumber(ARGV[a])
  local alerts = tonumber(ARGV[a + 1])
  a = a + 2
  local consumed = redis.call('ZREM', holds, member) == 1
  if consumed then
    -- never -0 (a call that held nothing): Redis reads "-0" as no integer and refuses the script
    if held > 0 and redis.call('HINCRBY', account, 'reserved', -held) < 0 then
      redis.call('HSET', account, 'reserved', 0)
    end
  else
    consumed = redis.call('ZREM', holds, '~' .. member) == 1
    if not consumed then
      local seeded = tonumber(redis.call('HGET', account, 'seeded'))
      if seeded and seeded > admitted and ended >= seeded and not redis.call('ZSCORE', holds, 's' .. member) then
        redis.call('ZADD', holds, now + {LAPSED}, 's' .. member)
        consumed = true
      end
    end
  end
  if consumed then
    found = true
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
if nl > 0 then
  local leases = lease_members(ARGV[7], tonumber(ARGV[13]))
  for j = 1, nl do
    if redis.call('ZREM', KEYS[n + j], unpack(leases)) > 0 then
      found = true
    end
  end
end
if found and n > 0 then
  local index = math.floor(now / window)
  local elapsed = now - index * window
  for i = 1, n do
    local previous, current, at, now_at = counts(KEYS[i], index)
    local limit, amount = tonumber(ARGV[12 + 2 * i]), tonumber(ARGV[13 + 2 * i])
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
end
return crossed
"""
).replace("{LAPSED}", str(LAPSED_KEEP_MS))

# KEYS: nl lease sets, then pairs of (account, holds). ARGV: nl, lease_member, hold_member, deadline_ms,
# lease_key_expire_at_ms, lease count. Moves the deadline of the call's live leases and hold (a long stream keeps
# them); returns 1 if any was found, 0 if all had lapsed already.
RENEW = (
    _LEASES
    + """
local nl = tonumber(ARGV[1])
local found = 0
local leases = lease_members(ARGV[2], tonumber(ARGV[6]))
for j = 1, nl do
  for _, lease in ipairs(leases) do
    if redis.call('ZSCORE', KEYS[j], lease) then
      redis.call('ZADD', KEYS[j], ARGV[4], lease)
      redis.call('PEXPIREAT', KEYS[j], ARGV[5])
      found = 1
    end
  end
end
for i = nl + 1, #KEYS, 2 do
  if redis.call('ZSCORE', KEYS[i + 1], ARGV[3]) then
    redis.call('ZADD', KEYS[i + 1], ARGV[4], ARGV[3])
    found = 1
  end
end
return found
"""
)

# KEYS: account. ARGV: spent (from the ledger), now_ms, expire_at (unix s, 0 = never).
# Creates a missing account with the spend the ledger knows, marked `seeded` now; changes nothing where
# it exists (another replica rebuilt it first). Returns 1 if it created it.
SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'reserved', 0, 'seeded', ARGV[2])
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
return 1
"""
