#!lua
--[[
  add_acks: record acks for one or more runs of one shard, in order.

  For each ack: an ack id already recorded for its run is a duplicate and
  changes nothing. If that record was made by an earlier run of this very call
  (same call token: the client re-sent it after a lost reply), the reply repeats
  the outcome that run gave instead of "duplicate", so a re-send reports what
  the caller would have seen. Otherwise the encoded ack is appended to the run's list and
  its (domain, action) moves along the state machine (docs/state-machine.md):
    no expectation         -> drift; its status is remembered so that an
                              expectation declared later starts from it
    PENDING                -> ACKED (ok) / FAILED (failed or rolled back), late if
                              past due (server time > due)
    MISSING                -> ACKED / FAILED, late
    FAILED and ok          -> ACKED (a successful retry), late mark kept
    ACKED and rolled back  -> FAILED (the success was undone), late mark kept
    ACKED, and a plain failure, or FAILED again -> unchanged (the ack is still kept)
  A run with no PENDING expectation left leaves the pending index. When a run
  is settled (nothing PENDING) and its acks change its verdict (COMPLETE,
  INCOMPLETE or STALE) from the one last pushed, the new verdict is appended to
  the shard's findings stream, once.
  The run's five keys get ttl_ms again whenever the acks list has less than
  ttl_ms - ttl_ms/16 left (or no TTL yet), so every key always has at least
  15/16 of ttl_ms to live after an ack, for one PTTL instead of five PEXPIREs
  (never less than they have: a declaration may have extended it to outlive a
  deadline; see refresh_ttl).
  Before anything else, the shard's store epoch is checked (one GET; see
  epoch_error): on a server that lost the store's data the call is refused
  (RAC_RESET) instead of recording every ack as drift.

  KEYS[1]: P:{s}:pending  zset  run_id -> earliest PENDING due (ms)
  then five keys per run r (r = 1 .. R), at KEYS[2 + 5(r-1)] onwards:
           P:{s}:exp:<run>   hash  "domain|action" -> encoded expectation
           P:{s}:st:<run>    hash  "domain|action" -> "STATUS|acked_at_ms|late|live",
                                   and the run's counters and last verdict ("#..." fields)
           P:{s}:due:<run>   zset  PENDING "domain|action" -> due (ms)
           P:{s}:acks:<run>  list  encoded acks in arrival order
           P:{s}:ackid:<run> hash  ack id -> outcome digit .. call token
  KEYS[#KEYS - 1]: P:{s}:findings  stream  findings events of the shard
  KEYS[#KEYS]:     P:{s}:epoch     string  the shard's store epoch (reset detection)

  ARGV[1]: ttl_ms of every run key (whole number > 0)
  ARGV[2]: call token: random bytes, one per logical call, the same on re-sends
  ARGV[3]: R, the number of runs
  then per run r:   run_id, m (number of its acks),
  then per ack:     ack id, expectation key "domain|action", ok flag ("1" success,
                    "0" failure, "2" rolled back), encoded ack (opaque bytes)
  ARGV[#ARGV - 1]: findings stream bound (whole number > 0; approximate MAXLEN)
  ARGV[#ARGV]:     the store epoch the client opened with (RAC_RESET when it differs)

  Reply    array of integers, one per ack in order:
           0 recorded, 1 duplicate, 2 drift, 3 late
  Errors   "RAC_BADARG <what>" when an argument is malformed; nothing is written.
           "RAC_RESET <what>" when the shard's epoch is gone or new (the server
           lost the store's data since the client opened it); nothing is written.
]]
-- @include "common"

local RECORDED, DUPLICATE, DRIFT, LATE = 0, 1, 2, 3
local OK_FLAGS = { ['1'] = true, ['0'] = true, ['2'] = true }

local ttl_ms = whole(ARGV[1])
local token = ARGV[2]
local runs = whole(ARGV[3])
if ttl_ms == nil or ttl_ms == 0 then return redis.error_reply('RAC_BADARG ttl_ms') end
if token == nil or token == '' then return redis.error_reply('RAC_BADARG call token') end
if runs == nil or #KEYS ~= 3 + 5 * runs then return redis.error_reply('RAC_BADARG key count') end
local stream, maxlen = KEYS[#KEYS - 1], whole(ARGV[#ARGV - 1])
if maxlen == nil or maxlen == 0 then return redis.error_reply('RAC_BADARG findings maxlen') end

-- Validate everything before the first write.
local at = 4
for r = 1, runs do
  local run_id, m = ARGV[at], whole(ARGV[at + 1])
  if run_id == nil or run_id == '' then return redis.error_reply('RAC_BADARG run_id of run ' .. r) end
  if m == nil then return redis.error_reply('RAC_BADARG ack count of run ' .. r) end
  at = at + 2
  for j = 1, m do
    local ack_id, key, ok = ARGV[at], ARGV[at + 1], ARGV[at + 2]
    if at + 3 >= #ARGV - 1 then return redis.error_reply('RAC_BADARG argument count') end
    if ack_id == '' then return redis.error_reply('RAC_BADARG ack id of ack ' .. j) end
    if not string.find(key, '|', 1, true) then
      return redis.error_reply('RAC_BADARG expectation key of ack ' .. j)
    end
    if not OK_FLAGS[ok] then return redis.error_reply('RAC_BADARG ok flag of ack ' .. j) end
    at = at + 4
  end
end
if at ~= #ARGV - 1 then return redis.error_reply('RAC_BADARG argument count') end
local reset = epoch_error()
if reset then return redis.error_reply(reset) end

local now = now_ms()
-- The clock as status records hold it, formatted once per call rather than once per ack.
local now_text = string.format('%d', now)
local outcomes = {}
-- Per run: payloads to append and due members to remove, each written by one
-- variadic command after the run's acks; the earliest due time removed.
local payloads, removed, earliest_removed

-- Ack ids met so far in this execution, per run: a repeat inside one call is a
-- duplicate, whether this execution recorded the first one or an earlier one did.
-- A run with a single ack in the call can repeat nothing: false, no table.
local met = {}

-- The new status of a recorded (domain, action) after an ack, or nil for no change.
local function target_of(status, ok)
  if status == nil or status == 'PENDING' or status == 'MISSING' then
    return (ok == '1') and 'ACKED' or 'FAILED'
  end
  if status == 'FAILED' and ok == '1' then return 'ACKED' end
  if status == 'ACKED' and ok == '2' then return 'FAILED' end
  return nil
end

-- Apply one ack. Returns its outcome, whether it took the key out of the due set,
-- and whether it moved the run's counters (so that the verdict may have changed).
local function apply(k, ack_id, key, ok, payload)
  local st_key, due_key = KEYS[k + 1], KEYS[k + 2]
  local seen, first_here = met[k], true
  if seen then
    first_here = not seen[ack_id]
    seen[ack_id] = true
  end
  local previous = redis.call('HGET', KEYS[k + 4], ack_id)
  if previous then
    if first_here and string.sub(previous, 2) == token then
      return tonumber(string.sub(previous, 1, 1)), false, false
    end
    return DUPLICATE, false, false
  end
  payloads[#payloads + 1] = payload
  local record = redis.call('HGET', st_key, key)
  -- only add_expectations writes PENDING, beside the expectation: no need to look
  local expected = (record and string.sub(record, 1, 8) == 'PENDING|')
    or redis.call('HEXISTS', KEYS[k], key) == 1
  local status, acked_at, late, live = nil, 0, '0', '0'
  -- A PENDING record is always one of the two texts add_expectations writes
  -- (status_record('PENDING', 0, '0', live)), whose values are these defaults:
  -- known without string.match. Any other record is parsed.
  if record == 'PENDING|0|0|0' then
    status = 'PENDING'
  elseif record == 'PENDING|0|0|1' then
    status, live = 'PENDING', '1'
  elseif record then
    status, acked_at, late, live = parse_status(record)
  end
  local target = target_of(status, ok)
  local outcome, left_due, moved = RECORDED, false, false
  if status == 'PENDING' then
    local due = tonumber(redis.call('ZSCORE', due_key, key))
    removed[#removed + 1] = key
    -- a PENDING key missing from the due set makes the index be rewritten
    earliest_removed = math.min(earliest_removed, due or -math.huge)
    left_due = true
    late = (due ~= nil and now > due) and '1' or '0'
    if late == '1' then outcome = LATE end
  elseif status == 'MISSING' then
    late, outcome = '1', LATE
  end
  if target then
    redis.call('HSET', st_key, key, status_record(target, now_text, late, live))
    moved = recount(st_key, status, expected, target, expected, live)
  end
  if not expected then outcome = DRIFT end
  redis.call('HSET', KEYS[k + 4], ack_id, outcome .. token)
  return outcome, left_due, moved
end

-- One variadic command per 1000 items (Lua 5.1's unpack is bounded by its C stack).
local function call_chunked(command, key, items)
  for i = 1, #items, 1000 do
    redis.call(command, key, unpack_all(items, i, math.min(i + 999, #items)))
  end
end

-- reindex_run after removals: the run's index score is its earliest PENDING due,
-- so when everything removed was due no earlier than the earliest one left, the
-- score stands and is not rewritten. Returns true when no PENDING is left.
local function reindex_after_removal(pending_key, due_key, run_id, earliest)
  local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
  if not first[1] then
    redis.call('ZREM', pending_key, run_id)
    return true
  end
  if tonumber(first[2]) > earliest then redis.call('ZADD', pending_key, first[2], run_id) end
  return false
end

at = 4
for r = 1, runs do
  local k = 2 + 5 * (r - 1)
  local run_id, m = ARGV[at], whole(ARGV[at + 1])
  met[k] = m > 1 and {} or false
  at = at + 2
  local reindex, changed = false, false
  payloads, removed, earliest_removed = {}, {}, math.huge
  for j = 1, m do
    local outcome, left_due, moved = apply(k, ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3])
    outcomes[#outcomes + 1] = outcome
    reindex = reindex or left_due
    changed = changed or moved
    at = at + 4
  end
  call_chunked('RPUSH', KEYS[k + 3], payloads)
  call_chunked('ZREM', KEYS[k + 2], removed)
  if reindex and reindex_after_removal(KEYS[1], KEYS[k + 2], run_id, earliest_removed) then
    changed = true
  end
  if changed then
    settle(KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], stream, maxlen, run_id, 'ack', now)
  end
  -- Every recorded ack writes the acks list, so a list this call created has no
  -- TTL yet (PTTL -1) and gets one here, with the run's other keys.
  if redis.call('PTTL', KEYS[k + 3]) < ttl_ms - math.floor(ttl_ms / 16) then
    refresh_ttl(k, 5, ttl_ms)
  end
end
return outcomes
