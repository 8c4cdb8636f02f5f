//! The Lua scripts: each operation that touches several keys is one atomic round trip.

use std::sync::LazyLock;

/// Compares two stream ids (`ms-seq`): -1, 0 or 1.
const CMP: &str = r#"
local function split(id)
  local d = string.find(id, '-', 1, true)
  if not d then return tonumber(id), 0 end
  return tonumber(string.sub(id, 1, d - 1)), tonumber(string.sub(id, d + 1))
end
local function cmp(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  if am ~= bm then if am < bm then return -1 else return 1 end end
  if as ~= bs then if as < bs then return -1 else return 1 end end
  return 0
end
"#;

/// Appends to a stream of a session, trimming exactly to a bound and remembering the newest
/// id trimmed (so that a resume before it is "expired", never silently short).
/// KEYS: stream, meta. ARGV: epoch, stream name, field (`m` or `p`), body, max len, ttl ms.
const APPEND_BODY: &str = r#"
local function append()
  redis.call('HSETNX', KEYS[2], 'epoch', ARGV[1])
  redis.call('HSET', KEYS[2], 's:' .. ARGV[2], '1')
  local id = redis.call('XADD', KEYS[1], '*', ARGV[3], ARGV[4])
  local max = tonumber(ARGV[5])
  local len = redis.call('XLEN', KEYS[1])
  if len > max then
    local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - max)
    redis.call('HSET', KEYS[2], 't:' .. ARGV[2], old[#old][1])
    redis.call('XTRIM', KEYS[1], 'MAXLEN', max)
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  return {redis.call('HGET', KEYS[2], 'epoch'), id}
end
"#;

/// A plain append. Returns `{epoch, id}`.
pub(crate) static APPEND: LazyLock<String> =
    LazyLock::new(|| format!("{APPEND_BODY}\nreturn append()"));

/// An event of the log appended to a session's standalone stream, at most once: KEYS[3] is
/// the session's record, whose `last` is the newest log id appended (by any replica).
/// ARGV[7]: the event's log id. Returns 0 (session gone), 1 (already there) or `{epoch, id}`.
pub(crate) static GUARDED_APPEND: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"{CMP}{APPEND_BODY}
local last = redis.call('HGET', KEYS[3], 'last')
if not last then return 0 end
if cmp(ARGV[7], last) <= 0 then return 1 end
redis.call('HSET', KEYS[3], 'last', ARGV[7])
return append()"#
    )
});

/// Moves a session's `last` forward to ARGV[1] (after a catch-up found nothing newer).
/// KEYS: session record.
pub(crate) static ADVANCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"{CMP}
local last = redis.call('HGET', KEYS[1], 'last')
if last and cmp(ARGV[1], last) > 0 then redis.call('HSET', KEYS[1], 'last', ARGV[1]) end
return 1"#
    )
});

/// Forgets every stream of a session. KEYS: meta. ARGV: the key prefix of its streams.
pub(crate) const REMOVE_SESSION: &str = r#"
local fields = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(fields) do
  if string.sub(f, 1, 2) == 's:' then redis.call('DEL', ARGV[1] .. string.sub(f, 3)) end
end
redis.call('DEL', KEYS[1])
return 1
"#;

/// Publishes an event: appends it to the log and keeps it as the retained value of its topic
/// (native expiry, with the log id in `_meta["mcpbus/cursor"]`), indexed by first segment so
/// that wildcards find it without a scan.
/// KEYS: log, retained value, first-segment index, topic index of that segment.
/// ARGV: topic, params, retained (`1`/`0`), expiry in ms since the epoch or empty, log max
/// len, first segment. Returns the log id.
pub(crate) const PUBLISH: &str = r#"
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'k', 'e', 't', ARGV[1], 'p', ARGV[2])
if ARGV[3] == '1' then
  -- The params (one JSON object, without _meta) with the event's log id spliced in, so that a
  -- retained value delivered later tells when it was published.
  local value = string.sub(ARGV[2], 1, -2) .. ',"_meta":{"mcpbus/cursor":"' .. id .. '"}}'
  if ARGV[4] ~= '' then
    redis.call('SET', KEYS[2], value, 'PXAT', ARGV[4])
  else
    redis.call('SET', KEYS[2], value)
  end
  redis.call('SADD', KEYS[3], ARGV[6])
  redis.call('SADD', KEYS[4], ARGV[1])
end
return id
"#;

/// A subscription change: a control entry in the log (so that every replica applies it at
/// the same point of the log) and the session's subscription list, where each pattern keeps
/// the log id it started at (`s`) and, once removed, ended at (`u`).
/// KEYS: log, session record. ARGV: session, `a` (add) or `r` (remove), patterns (JSON
/// array), log max len. Returns the log id, or false when the session is gone.
pub(crate) static SUBSCRIBE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"{CMP}
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'k', 's', 's', ARGV[1], 'o', ARGV[2], 'p', ARGV[3])
local raw = redis.call('HGET', KEYS[2], 'subs')
local subs = {{}}
if raw then subs = cjson.decode(raw) end
local pats = cjson.decode(ARGV[3])
local last = redis.call('HGET', KEYS[2], 'last') or '0-0'
local out = {{}}
for _, s in ipairs(subs) do
  if not (s['u'] and cmp(s['u'], last) <= 0) then
    if ARGV[2] == 'r' and not s['u'] then
      for _, p in ipairs(pats) do if p == s['p'] then s['u'] = id end end
    end
    table.insert(out, s)
  end
end
if ARGV[2] == 'a' then
  for _, p in ipairs(pats) do
    local active = false
    for _, s in ipairs(out) do if s['p'] == p and not s['u'] then active = true end end
    if not active then table.insert(out, {{p = p, s = id}}) end
  end
end
redis.call('HSET', KEYS[2], 'subs', cjson.encode(out))
return id"#
    )
});

/// Records an initialized session; its events start after the log's newest entry.
/// KEYS: session record, log. ARGV: record JSON, ttl ms.
pub(crate) const CREATE_SESSION: &str = r#"
local last = '0-0'
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #top > 0 then last = top[1][1] end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'last', last)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return last
"#;

/// Ends a session for every replica: deletes its record and tells the others through the log.
/// KEYS: session record, log. ARGV: session, log max len. Returns 1, or 0 if it did not exist.
pub(crate) const END_SESSION: &str = r#"
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'k', 'x', 's', ARGV[1])
return 1
"#;

/// What a read of the log needs to place a cursor (docs/protocol.md 3.3): whether the log
/// exists, its length, how many entries were ever added (more than its length once trimming
/// began), its first entry and its newest id. KEYS: log. Returns `{0}` when there is no log,
/// else `{1, length, entries-added, first id or '', last id}`; `entries-added` is -1 before
/// Redis 7.0, which does not count it.
pub(crate) const LOG_BOUNDS: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local out = {1, 0, -1, '', '0-0'}
for i = 1, #info, 2 do
  local k = info[i]
  if k == 'length' then out[2] = info[i + 1]
  elseif k == 'entries-added' then out[3] = info[i + 1]
  elseif k == 'last-generated-id' then out[5] = info[i + 1]
  elseif k == 'first-entry' and type(info[i + 1]) == 'table' then out[4] = info[i + 1][1]
  end
end
return out
"#;
