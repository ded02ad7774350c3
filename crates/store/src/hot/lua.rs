//! The Lua scripts of the hot state. Amounts are integer pico-dollars carried as strings and
//! changed only by `HINCRBY` (64-bit integer arithmetic in Redis); a script looks at an amount
//! only to take its sign (`tonumber` is a double, exact in sign whatever the magnitude), so no
//! amount ever passes through a Lua float.
//!
//! Fields of a balance hash (an account's, or a key's limit period):
//! - `avail`: what may still be reserved;
//! - `ver`: the Postgres version its base balance was read at (or healed to);
//! - `ep`: a random epoch chosen when the hash was created, stamped on every settlement taken
//!   from it, so the ledger writer knows whether a posted charge was already taken from this
//!   very copy (and only the `unp` counter must move) or from a copy Redis has since lost;
//! - `unp`: charges taken from `avail` and not yet posted to Postgres;
//! - `top`: the highest posting version reconciled into it;
//! - `h:{req}`: an open hold, or `-{charged}` once settled (a tombstone, removed by the writer
//!   after posting, that makes a retried settle a no-op).
//!
//! A hash with exactly these five fields (`HLEN == 5`) holds nothing in flight: the writer then
//! heals `avail` to the Postgres balance of the newest posting it has seen, which makes any
//! drift transient. (Only the newest: a charge posted at a later version and reconciled
//! earlier is in `top`, and a charge not yet reconciled still has its tombstone.)

/// Shared helpers: charging with a cap at zero, and settling one request.
const PRELUDE: &str = r"
local function neg(x) return string.sub(x, 1, 1) == '-' end
-- Takes `c` from k's avail but never below zero; returns what was taken.
local function take_capped(k, c)
  local left = redis.call('HINCRBY', k, 'avail', '-' .. c)
  if left >= 0 then return c end
  redis.call('HINCRBY', k, 'avail', c)
  local avail = redis.call('HGET', k, 'avail')
  if tonumber(avail) <= 0 then return '0' end
  redis.call('HSET', k, 'avail', '0')
  return avail
end
-- Closes the hold of `req` on account hash a (and key hash k, or false) and charges `c`, which
-- the gateway already capped at the hold. A hold that is gone (swept, or lost with Redis) is
-- charged from avail but never below zero. Returns the charge, or nil and the earlier charge
-- if this request was settled already.
local function settle(a, k, req, c)
  local f = 'h:' .. req
  local ha = redis.call('HGET', a, f)
  if ha and neg(ha) then return nil, string.sub(ha, 2) end
  local hk = false
  if k then hk = redis.call('HGET', k, f) end
  if ha then redis.call('HINCRBY', a, 'avail', ha) end
  if hk and not neg(hk) then redis.call('HINCRBY', k, 'avail', hk) else hk = false end
  if c ~= '0' then
    if ha then redis.call('HINCRBY', a, 'avail', '-' .. c) else c = take_capped(a, c) end
    if k and c ~= '0' then
      if hk then
        redis.call('HINCRBY', k, 'avail', '-' .. c)
      else
        local ck = take_capped(k, c)
        if ck ~= c then
          redis.call('HINCRBY', a, 'avail', c)
          redis.call('HINCRBY', a, 'avail', '-' .. ck)
          c = ck
        end
      end
    end
    if c ~= '0' then
      redis.call('HINCRBY', a, 'unp', c)
      if k then redis.call('HINCRBY', k, 'unp', c) end
    end
  end
  redis.call('HSET', a, f, '-' .. c)
  if k then redis.call('HSET', k, f, '-' .. c) end
  return c
end
local function epoch(k)
  if not k then return '' end
  return redis.call('HGET', k, 'ep') or ''
end
-- A journal entry is one field, `s`: `charged|epoch|key epoch|payload` (one value to parse
-- per entry instead of eight).
local function journal_add(stream, c, ea, ek, payload)
  return redis.call('XADD', stream, '*', 's', c .. '|' .. ea .. '|' .. ek .. '|' .. payload)
end
-- Rate limits are GCRA over a one-minute window: a limit's key holds its theoretical arrival
-- time (TAT, µs of Redis's clock); a request taking n units moves it n * (window / limit)
-- later, and is allowed while the TAT stays within one window of now. One clock reading per
-- call: every operation of a batch happens at the same instant.
local WINDOW = 60000000
local clock = false
local function now_us()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return clock
end
local function set_tat(rk, tat, t)
  local ttl = math.ceil((tat - t) / 1000) + 1000
  if ttl > 0 then
    redis.call('SET', rk, string.format('%.0f', tat), 'PX', ttl)
  else
    redis.call('DEL', rk)
  end
end
";

/// The batched request-path operations. KEYS lists every key the batch touches; each op names
/// its keys by index (0 = none). ARGV[1] is the journal backlog limit; ops follow, each a code
/// and a fixed number of arguments. Each op answers one string, its parts joined by `|` (one
/// value per op is much cheaper for the client to parse than nested arrays):
///
/// - `R journal holds acct key req amount member deadline n (rate limit cost)*n` reserve,
///   checking `n` rate limits (GCRA keys, units per minute, units taken) in the same step:
///   `O|states` reserved, `L` / `K` account / key period not loaded, `I|avail` insufficient,
///   `Q|remaining` key limit reached, `B|backlog` journal full, `T|retry ms|states` a rate
///   limit is reached (retry -1: this request alone is over the limit). `states` is one
///   `remaining,reset ms` per rate limit, in order. A refused request takes nothing from any
///   limit or balance.
/// - `S journal holds prog acct key req charge member payload n (rate limit delta)*n` settle,
///   correcting token rate limits by what the request really used: `S|charged|id|epoch|key
///   epoch`, `D|charged` settled before, `L` / `K` not loaded.
/// - `P holds prog acct req member deadline charge payload` record a stream's progress (the
///   record to post if this instance dies) and extend its hold: `P`, or `G` if the hold is
///   no longer open.
/// - `X holds member deadline` extend a hold's deadline: `X`.
/// - `J journal payload` queue a record that holds nothing: `J|id`.
const OPS: &str = r"
local out = {}
local i = 2
local function arg() local v = ARGV[i]; i = i + 1; return v end
local function key() local n = tonumber(arg()); if n == 0 then return false end; return KEYS[n] end
while i <= #ARGV do
  local op = arg()
  if op == 'R' then
    local journal, holds, a, k = key(), key(), key(), key()
    local req, amount, member, deadline = arg(), arg(), arg(), arg()
    local rl = {}
    for j = 1, tonumber(arg()) do rl[j] = {key(), WINDOW / tonumber(arg()), tonumber(arg())} end
    local r
    local t, wait, never, states = 0, 0, false, ''
    if redis.call('EXISTS', a) == 0 then r = 'L'
    elseif k and redis.call('EXISTS', k) == 0 then r = 'K'
    else
      local backlog = redis.call('XLEN', journal)
      if #rl > 0 then
        t = now_us()
        for _, l in ipairs(rl) do
          local tat = tonumber(redis.call('GET', l[1]) or '0')
          if tat < t then tat = t end
          l[4], l[5] = tat, tat + l[3] * l[2]
          if l[5] - t > WINDOW then
            if l[3] * l[2] > WINDOW then never = true end
            if l[5] - t - WINDOW > wait then wait = l[5] - t - WINDOW end
          end
        end
        local allowed = wait == 0 and not never
        for _, l in ipairs(rl) do
          local at = l[4]
          if allowed then at = l[5] end
          states = states .. '|' .. math.floor((t + WINDOW - at) / l[2]) .. ',' .. math.ceil((at - t) / 1000)
        end
      end
      if backlog > tonumber(ARGV[1]) then r = 'B|' .. backlog
      elseif never then r = 'T|-1' .. states
      elseif wait > 0 then r = 'T|' .. math.ceil(wait / 1000) .. states
      elseif amount == '0' then
        if tonumber(redis.call('HGET', a, 'avail')) < 0 then r = 'I|' .. redis.call('HGET', a, 'avail')
        elseif k and tonumber(redis.call('HGET', k, 'avail')) < 0 then r = 'Q|' .. redis.call('HGET', k, 'avail')
        end
      else
        if redis.call('HINCRBY', a, 'avail', '-' .. amount) < 0 then
          redis.call('HINCRBY', a, 'avail', amount)
          r = 'I|' .. redis.call('HGET', a, 'avail')
        elseif k and redis.call('HINCRBY', k, 'avail', '-' .. amount) < 0 then
          redis.call('HINCRBY', k, 'avail', amount)
          redis.call('HINCRBY', a, 'avail', amount)
          r = 'Q|' .. redis.call('HGET', k, 'avail')
        end
      end
      if not r then
        redis.call('HSET', a, 'h:' .. req, amount)
        if k then redis.call('HSET', k, 'h:' .. req, amount) end
        redis.call('ZADD', holds, deadline, member)
        for _, l in ipairs(rl) do set_tat(l[1], l[5], t) end
        r = 'O' .. states
      end
    end
    table.insert(out, r)
  elseif op == 'S' then
    local journal, holds, prog, a, k = key(), key(), key(), key(), key()
    local req, charge, member, payload = arg(), arg(), arg(), arg()
    local rl = {}
    for j = 1, tonumber(arg()) do rl[j] = {key(), WINDOW / tonumber(arg()), tonumber(arg())} end
    if redis.call('EXISTS', a) == 0 then table.insert(out, 'L')
    elseif k and redis.call('EXISTS', k) == 0 then table.insert(out, 'K')
    else
      local c, before = settle(a, k, req, charge)
      if not c then
        table.insert(out, 'D|' .. before)
      else
        redis.call('ZREM', holds, member)
        redis.call('HDEL', prog, req, 'c:' .. req)
        for _, l in ipairs(rl) do
          local cur = redis.call('GET', l[1])
          if cur and l[3] ~= 0 then
            local t = now_us()
            set_tat(l[1], tonumber(cur) + l[3] * l[2], t)
          end
        end
        local ea, ek = epoch(a), epoch(k)
        local id = journal_add(journal, c, ea, ek, payload)
        table.insert(out, 'S|' .. c .. '|' .. id .. '|' .. ea .. '|' .. ek)
      end
    end
  elseif op == 'P' then
    local holds, prog, a = key(), key(), key()
    local req, member, deadline, charge, payload = arg(), arg(), arg(), arg(), arg()
    local h = redis.call('HGET', a, 'h:' .. req)
    if h and not neg(h) then
      redis.call('HSET', prog, req, payload, 'c:' .. req, charge)
      redis.call('ZADD', holds, 'XX', deadline, member)
      table.insert(out, 'P')
    else
      table.insert(out, 'G')
    end
  elseif op == 'X' then
    local holds = key()
    local member, deadline = arg(), arg()
    redis.call('ZADD', holds, 'XX', deadline, member)
    table.insert(out, 'X')
  elseif op == 'J' then
    local journal = key()
    local payload = arg()
    table.insert(out, 'J|' .. journal_add(journal, '0', '', '', payload))
  else
    return redis.error_reply('unknown hot op ' .. tostring(op))
  end
end
return out
";

/// Holds past their deadline, whose instance died or lost Redis for longer than the lease: a
/// hold with recorded stream progress is charged that progress (its record queued as the
/// request's settlement); any other hold is released. KEYS: holds, prog, journal of one shard.
/// ARGV: now (ms), max members, the shard's key base. Returns `{released, charged}`.
const SWEEP: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local released, charged = 0, 0
for _, m in ipairs(expired) do
  local p = {}
  for part in string.gmatch(m, '[^:]+') do table.insert(p, part) end
  local a = ARGV[3] .. ':acct:' .. p[1]
  local req = p[2]
  local k = false
  if p[4] then k = ARGV[3] .. ':key:' .. p[3] .. ':' .. p[4] end
  if k and redis.call('EXISTS', k) == 0 then k = false end
  local payload = redis.call('HGET', KEYS[2], req)
  if payload then
    local c = redis.call('HGET', KEYS[2], 'c:' .. req) or '0'
    local e, f = '', ''
    if redis.call('EXISTS', a) == 1 then
      local got = settle(a, k, req, c)
      if got then c = got; e = epoch(a); f = epoch(k) else c = nil end
    end
    if c then
      journal_add(KEYS[3], c, e, f, payload)
      charged = charged + 1
    end
    redis.call('HDEL', KEYS[2], req, 'c:' .. req)
  else
    for _, h in ipairs({a, k}) do
      if h then
        local v = redis.call('HGET', h, 'h:' .. req)
        if v and not neg(v) then
          redis.call('HINCRBY', h, 'avail', v)
          redis.call('HDEL', h, 'h:' .. req)
        end
      end
    end
    released = released + 1
  end
  redis.call('ZREM', KEYS[1], m)
end
return {released, charged}
";

/// After a posting batch: reconciles balance hashes with what Postgres now holds. KEYS: the
/// hashes. ARGV: groups of `idx ver balance delta n (req epoch charged refund final)*n`, where
/// `ver` is the version this posting gave the book (or 0 if it posted nothing to it):
/// - a settlement whose tombstone is here and whose epoch is this copy's was charged to this
///   copy: its charge leaves `unp`, and `refund` (what the writer capped off it) goes back to
///   `avail`;
/// - otherwise, if it was posted now (`final` is what Postgres took, empty for a replay), it
///   was charged to a copy Redis lost: `avail` loses `final`, unless this copy was built from
///   a version that already includes this posting (`ver` newer than its base);
/// - `delta` is the same for postings that are not settlements (grants, top-ups, refunds);
/// - finally a copy with nothing in flight is healed to `balance` at `ver`, if `ver` is the
///   newest posting it has seen.
const RECONCILE: &str = r"
local i = 1
local function arg() local v = ARGV[i]; i = i + 1; return v end
local healed = 0
while i <= #ARGV do
  local k = KEYS[tonumber(arg())]
  local ver, balance, delta, n = arg(), arg(), arg(), tonumber(arg())
  local v = tonumber(ver)
  local exists = redis.call('EXISTS', k) == 1
  local cur, base = '', 0
  if exists then
    cur = redis.call('HGET', k, 'ep') or ''
    base = tonumber(redis.call('HGET', k, 'ver') or '0')
  end
  for _ = 1, n do
    local req, ep, c, refund, fin = arg(), arg(), arg(), arg(), arg()
    if exists then
      local hit = redis.call('HDEL', k, 'h:' .. req) == 1
      if hit and ep ~= '' and ep == cur then
        if c ~= '0' then redis.call('HINCRBY', k, 'unp', '-' .. c) end
        if refund ~= '0' then redis.call('HINCRBY', k, 'avail', refund) end
      elseif fin ~= '' and fin ~= '0' and base < v then
        redis.call('HINCRBY', k, 'avail', '-' .. fin)
      end
    end
  end
  if exists and v > 0 then
    local top = tonumber(redis.call('HGET', k, 'top') or '0')
    if delta ~= '0' and base < v then redis.call('HINCRBY', k, 'avail', delta) end
    if v > top then redis.call('HSET', k, 'top', ver); top = v end
    if balance ~= '' and v >= top and base <= v and redis.call('HLEN', k) == 5
       and redis.call('HGET', k, 'unp') == '0' then
      redis.call('HSET', k, 'avail', balance, 'ver', ver)
      healed = healed + 1
    end
  end
end
return healed
";

/// Installs a balance hash from Postgres unless one exists. ARGV: avail, ver, epoch, ttl ms
/// (0 = none). Returns 1 if installed.
const LOAD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'avail', ARGV[1], 'ver', ARGV[2], 'ep', ARGV[3], 'unp', '0', 'top', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
";

/// Takes up to ARGV[2] for a credit expiry, never below zero, as a settled tombstone
/// `h:{ARGV[1]}` (reconciled like a settlement). Returns `{taken, epoch}`, the earlier take if
/// this marker was taken already, or `{'-1', ''}` without a hot copy. Taking nothing leaves no
/// tombstone (there is nothing to reconcile).
const TAKE: &str = r"
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then return {'-1', ''} end
local f = 'h:' .. ARGV[1]
local prev = redis.call('HGET', k, f)
local ep = redis.call('HGET', k, 'ep') or ''
if prev then return {string.sub(prev, 2), ep} end
local c = take_capped(k, ARGV[2])
if c == '0' then return {'0', ep} end
redis.call('HINCRBY', k, 'unp', c)
redis.call('HSET', k, f, '-' .. c)
return {c, ep}
";

pub fn ops() -> String {
    format!("{PRELUDE}{OPS}")
}

pub fn sweep() -> String {
    format!("{PRELUDE}{SWEEP}")
}

pub fn take() -> String {
    format!("{PRELUDE}{TAKE}")
}

pub const fn reconcile() -> &'static str {
    RECONCILE
}

pub const fn load() -> &'static str {
    LOAD
}
