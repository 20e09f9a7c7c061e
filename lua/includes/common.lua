--[[
  Shared helpers, inlined by the loader wherever a script says `-- @include "common"`.
  Every helper is pure or touches only keys it is handed (which came from KEYS).
  Helpers never raise: they return an error text and the script returns
  redis.error_reply, because an error() raised inside a helper loses its text on
  the embedded backend.
]]

-- Server time in whole milliseconds (one clock for every worker).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A non-negative whole number from an ARGV text, or nil.
local function whole(text)
  local n = tonumber(text)
  if n == nil or n < 0 or n ~= math.floor(n) or n > 9007199254740991 then
    return nil
  end
  return n
end

-- Status record: "STATUS|acked_at_ms|late|live" (late and live are 0 or 1; live marks a
-- liveness expectation, whose MISSING makes the run STALE).
local function parse_status(record)
  local status, acked_at, late, live = string.match(record, '^(%u+)|(%d+)|([01])|([01])$')
  return status, tonumber(acked_at), late, live
end

-- acked_at: ms as a number, or already as its text (add_acks formats its clock once per call).
local function status_record(status, acked_at, late, live)
  if type(acked_at) ~= 'string' then acked_at = string.format('%d', acked_at) end
  return status .. '|' .. acked_at .. '|' .. late .. '|' .. live
end

-- Keep the shard's pending index in step with one run's due set: the run is
-- scored by its earliest PENDING due time, and leaves the index when none is left.
-- Returns true when the run has no PENDING expectation left, else false and its score.
local function reindex_run(pending_key, due_key, run_id)
  local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', pending_key, first[2], run_id)
    return false, first[2]
  end
  redis.call('ZREM', pending_key, run_id)
  return true
end

-- Every value of an array as arguments (Lua 5.4 on the embedded backend, 5.1 on Redis).
local unpack_all = table.unpack or unpack

-- The run's finding counters, fields of its st hash (no '|', so never an expectation
-- key): expected keys MISSING, expected keys FAILED, acked keys no expectation
-- declares (drift), and liveness expectations MISSING. Every script that moves a
-- status keeps them in step, so a run's verdict is one HMGET, whatever its size.
local COUNTERS = { '#missing', '#failed', '#drift', '#stale' }
-- The verdict last pushed to the findings stream for the run (COMPLETE, INCOMPLETE, STALE).
local VERDICT = '#verdict'

-- What one key adds to each counter, from its status (nil: no record), whether an
-- expectation declares it, and its liveness mark.
local function tally(status, expected, live)
  if status == nil or status == 'PENDING' then return 0, 0, 0, 0 end
  if not expected then return 0, 0, 1, 0 end
  if status == 'MISSING' then return 1, 0, 0, (live == '1') and 1 or 0 end
  if status == 'FAILED' then return 0, 1, 0, 0 end
  return 0, 0, 0, 0
end

-- Move the counters by what one key's change did; true when any counter moved.
-- Unrolled, without a table of the four deltas: it runs once per ack.
local function recount(st_key, old_status, old_expected, new_status, new_expected, live)
  local a1, a2, a3, a4 = tally(old_status, old_expected, live)
  local b1, b2, b3, b4 = tally(new_status, new_expected, live)
  local d1, d2, d3, d4 = b1 - a1, b2 - a2, b3 - a3, b4 - a4
  if d1 == 0 and d2 == 0 and d3 == 0 and d4 == 0 then return false end
  if d1 ~= 0 then redis.call('HINCRBY', st_key, COUNTERS[1], d1) end
  if d2 ~= 0 then redis.call('HINCRBY', st_key, COUNTERS[2], d2) end
  if d3 ~= 0 then redis.call('HINCRBY', st_key, COUNTERS[3], d3) end
  if d4 ~= 0 then redis.call('HINCRBY', st_key, COUNTERS[4], d4) end
  return true
end

-- Append one event to the shard's findings stream (bounded: approximate MAXLEN).
-- The fields after maxlen are name, value pairs; returns the entry id.
local function emit(stream_key, maxlen, ...)
  return redis.call('XADD', stream_key, 'MAXLEN', '~', maxlen, '*', ...)
end

-- Most (domain, action) pairs listed per kind in a verdict event (counts stay exact).
local LIST_CAP = 100

local function json_text(text)
  local escaped = string.gsub(text, '[%c"\\]', function(c)
    if c == '"' or c == '\\' then return '\\' .. c end
    return string.format('\\u%04x', string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

-- A sorted list of expectation keys as JSON [[domain, action], ...], at most LIST_CAP.
local function json_pairs(keys)
  local split = {}
  for i, key in ipairs(keys) do
    local domain, action = string.match(key, '^([^|]*)|(.*)$')
    split[i] = { domain, action }
  end
  table.sort(split, function(x, y)
    if x[1] ~= y[1] then return x[1] < y[1] end
    return x[2] < y[2]
  end)
  local parts = {}
  for i = 1, math.min(#split, LIST_CAP) do
    parts[i] = '[' .. json_text(split[i][1]) .. ',' .. json_text(split[i][2]) .. ']'
  end
  return '[' .. table.concat(parts, ',') .. ']'
end

-- The run's missing, failed and drift keys (one read of its statuses: O(expectations),
-- done only when a settled run's verdict changes).
local function finding_keys(exp_key, st_key)
  local declared = {}
  for _, key in ipairs(redis.call('HKEYS', exp_key)) do declared[key] = true end
  local missing, failed, drift = {}, {}, {}
  local flat = redis.call('HGETALL', st_key)
  for i = 1, #flat, 2 do
    local key = flat[i]
    if string.sub(key, 1, 1) ~= '#' then
      local status = parse_status(flat[i + 1])
      if not declared[key] then
        if status == 'ACKED' or status == 'FAILED' then drift[#drift + 1] = key end
      elseif status == 'MISSING' then
        missing[#missing + 1] = key
      elseif status == 'FAILED' then
        failed[#failed + 1] = key
      end
    end
  end
  return missing, failed, drift
end

-- When the run is settled (it declares expectations and none is PENDING) and its
-- verdict differs from the last one pushed, push the new one: one COMPLETE, INCOMPLETE
-- or STALE event with the counts and the action lists. A run with no expectation yet
-- (acks that came before the declaration) is not settled. Returns true when it pushed.
local function settle(exp_key, st_key, due_key, acks_key, stream_key, maxlen, run_id, source, now)
  if redis.call('ZCARD', due_key) > 0 or redis.call('EXISTS', exp_key) == 0 then return false end
  local c = redis.call('HMGET', st_key, COUNTERS[1], COUNTERS[2], COUNTERS[3], COUNTERS[4], VERDICT)
  local missing, failed, drift, stale = tonumber(c[1] or '0'), tonumber(c[2] or '0'),
    tonumber(c[3] or '0'), tonumber(c[4] or '0')
  local verdict = 'COMPLETE'
  if stale > 0 then
    verdict = 'STALE'
  elseif missing + failed + drift > 0 then
    verdict = 'INCOMPLETE'
  end
  if verdict == c[5] then return false end
  redis.call('HSET', st_key, VERDICT, verdict)
  local m, f, d = {}, {}, {}
  if verdict ~= 'COMPLETE' then m, f, d = finding_keys(exp_key, st_key) end
  emit(stream_key, maxlen, 'type', verdict, 'run_id', run_id,
    'at_ms', string.format('%d', now), 'source', source,
    'missing', tostring(missing), 'failed', tostring(failed), 'drift', tostring(drift),
    'stale', stale > 0 and '1' or '0',
    'expectations', tostring(redis.call('HLEN', exp_key)),
    'acks', tostring(redis.call('LLEN', acks_key)),
    'missing_actions', json_pairs(m), 'failed_actions', json_pairs(f),
    'drift_actions', json_pairs(d))
  return true
end

-- Give the run's keys KEYS[first .. first + count - 1] at least ttl_ms to live, never
-- less than they have: KEYS[first] is the run's exp hash in every script, and every
-- refresh sets all the run's keys alike, so its PTTL is the longest any of them has
-- (-1 or -2 when it has none). A declaration extends the TTL to cover its latest
-- deadline (add_expectations passes ttl_ms + that deadline); a later refresh with
-- the store's plain ttl_ms can then not shorten it, so a deadline never outlives
-- its run's keys (docs/reliability.md, "TTL and deadlines").
local function refresh_ttl(first, count, ttl_ms)
  local target = math.max(ttl_ms, redis.call('PTTL', KEYS[first]))
  for i = first, first + count - 1 do
    redis.call('PEXPIRE', KEYS[i], target)
  end
end

-- Reset detection (docs/reliability.md, "Reset detection"). The last key of every write
-- script is the shard's epoch key P:{s}:epoch, and its last argument the epoch the
-- client read (or set) when the store opened. When the key is gone or holds another
-- epoch, the server lost the store's data since then (a restart without persistence,
-- a flush): writing now would record acks against nothing (as drift), so the script
-- refuses before its first write. Returns the error text, or nil. One GET.
local function epoch_error()
  local epoch_key, expected = KEYS[#KEYS], ARGV[#ARGV]
  if expected == nil or expected == '' then return 'RAC_BADARG store epoch (store not opened)' end
  local current = redis.call('GET', epoch_key)
  if current == expected then return nil end
  local what = current and 'was made anew' or 'is gone'
  return 'RAC_RESET the store epoch ' .. epoch_key .. ' ' .. what
    .. ': the server lost its data since this store opened'
end

-- The arguments of sweep_run and end_run (8 KEYS; ARGV ttl_ms, run_id, limit, findings
-- bound, store epoch), checked in this order: ttl_ms, run_id, limit, maxlen, and a fifth
-- value, the error text of the first check that fails (nil when all pass).
local function marking_args()
  if #KEYS ~= 8 or #ARGV ~= 5 then
    return nil, nil, nil, nil, 'RAC_BADARG expected 8 keys and 5 arguments'
  end
  local ttl_ms, run_id, limit, maxlen = whole(ARGV[1]), ARGV[2], whole(ARGV[3]), whole(ARGV[4])
  local invalid = nil
  if ttl_ms == nil or ttl_ms == 0 then
    invalid = 'RAC_BADARG ttl_ms'
  elseif run_id == '' then
    invalid = 'RAC_BADARG run_id'
  elseif limit == nil or limit == 0 or limit > 1000 then
    invalid = 'RAC_BADARG limit'
  elseif maxlen == nil or maxlen == 0 then
    invalid = 'RAC_BADARG findings maxlen'
  else
    invalid = epoch_error()
  end
  return ttl_ms, run_id, limit, maxlen, invalid
end

-- The state of a run given to sweep_run or end_run whose due set is gone: 1 when it is
-- still in the shard's pending index (so it was PENDING, and its keys expired: the
-- caller reports it EXPIRED), 2 when nothing of it is left (unknown), nil otherwise
-- (settled: nothing is due, there is nothing to expire). A run in the index always has
-- a due set; acks that arrive after its keys expired make st and acks anew, never due.
local function lost_state(pending_key, exp_key, st_key, run_id)
  local score = redis.call('ZSCORE', pending_key, run_id)
  if score then return 1, score end
  if redis.call('EXISTS', exp_key, st_key) == 0 then return 2, nil end
  return nil, nil
end

-- sweep_run and end_run on a run whose due set is gone: the state lost_state gives; for
-- an expired run (1) it also leaves the index, with an EXPIRED event whose id is returned
-- after its old score. nil when the run has a due set.
local function expire_lost_run(pending_key, exp_key, st_key, due_key, stream_key, maxlen,
                               run_id, source, at)
  if redis.call('EXISTS', due_key) == 1 then return nil end
  local state, score = lost_state(pending_key, exp_key, st_key, run_id)
  if state ~= 1 then return state end
  redis.call('ZREM', pending_key, run_id)
  local id = emit(stream_key, maxlen, 'type', 'EXPIRED', 'run_id', run_id, 'at_ms', at,
    'source', source, 'due_ms', score)
  return 1, score, id
end

-- Mark MISSING the keys of `popped` (key, due ms, key, due ms, ... as ZPOPMIN replies),
-- those still PENDING (only PENDING keys are ever due: the check keeps a broken invariant
-- from spreading): one MISSING event each (`source`), their status records, the run's
-- counters. Returns key, due_ms, event id per mark.
local function mark_missing(st_key, stream_key, maxlen, run_id, source, at, popped)
  local keys = {}
  for i = 1, #popped, 2 do keys[#keys + 1] = popped[i] end
  if #keys == 0 then return {} end
  local records = redis.call('HMGET', st_key, unpack_all(keys))
  local marks, marked, stale = {}, {}, 0
  for j, key in ipairs(keys) do
    local status, live = nil, '0'
    if records[j] then
      local parsed, _, _, flag = parse_status(records[j])
      status, live = parsed, flag
    end
    if status == 'PENDING' then
      local due_ms = popped[2 * j]
      local domain, action = string.match(key, '^([^|]*)|(.*)$')
      local id = emit(stream_key, maxlen, 'type', 'MISSING', 'run_id', run_id, 'at_ms', at,
        'source', source, 'domain', domain, 'action', action, 'due_ms', due_ms)
      marks[#marks + 1] = key
      marks[#marks + 1] = status_record('MISSING', 0, '0', live)
      if live == '1' then stale = stale + 1 end
      marked[#marked + 1] = key
      marked[#marked + 1] = tonumber(due_ms)
      marked[#marked + 1] = id
    end
  end
  if #marks > 0 then
    redis.call('HSET', st_key, unpack_all(marks))
    redis.call('HINCRBY', st_key, COUNTERS[1], #marks / 2)
    if stale > 0 then redis.call('HINCRBY', st_key, COUNTERS[4], stale) end
  end
  return marked
end
