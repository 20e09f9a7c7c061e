#!lua
--[[
  end_run: the run is over; judge it now.

  Marks the run's PENDING expectations MISSING (due or not: the run ended
  without them), at most `limit` per call, earliest due first, with one MISSING
  event each (source "end"). When nothing PENDING is left, the run leaves the
  shard's pending index and, if its verdict (COMPLETE, INCOMPLETE or STALE)
  differs from the one last pushed, that verdict is appended to the findings
  stream. A second call, or a re-sent one, finds nothing PENDING and changes
  nothing. Acks that arrive later are LATE, as after a sweep.
  A run in the index whose due set is gone (its keys expired, even if later acks
  made some of them anew) leaves it with an EXPIRED event.

  KEYS[1]: P:{s}:pending     zset    run_id -> earliest PENDING due (ms)
  KEYS[2]: P:{s}:exp:<run>   hash    "domain|action" -> encoded expectation
  KEYS[3]: P:{s}:st:<run>    hash    "domain|action" -> "STATUS|acked_at_ms|late|live",
                                     and the run's counters and last verdict ("#..." fields)
  KEYS[4]: P:{s}:due:<run>   zset    PENDING "domain|action" -> due (ms)
  KEYS[5]: P:{s}:acks:<run>  list    encoded acks (counted in the verdict event)
  KEYS[6]: P:{s}:ackid:<run> hash    (TTL refresh only)
  KEYS[7]: P:{s}:findings    stream  findings events of the shard
  KEYS[8]: P:{s}:epoch       string  the shard's store epoch (reset detection)

  ARGV[1]: ttl_ms of every run key (whole number > 0)
  ARGV[2]: run_id (member of the pending index)
  ARGV[3]: limit: most expectations marked by this call (whole number 1..1000)
  ARGV[4]: findings stream bound (whole number > 0; approximate MAXLEN)
  ARGV[5]: the store epoch the client opened with (RAC_RESET when it differs)

  Reply    { state, now_ms, left }
           state 0 (ended): left is the number of PENDING expectations still to
             mark (call again while it is > 0)
           state 1 (expired): the run's keys were gone; it left the index
           state 2 (unknown): no keys and not in the index; nothing written
  Errors   "RAC_BADARG <what>" when an argument is malformed; nothing is written.
           "RAC_RESET <what>" when the shard's epoch is gone or new (the server
           lost the store's data since the client opened it); nothing is written.
]]
-- @include "common"

if #KEYS ~= 8 or #ARGV ~= 5 then return redis.error_reply('RAC_BADARG expected 8 keys and 5 arguments') end
local ttl_ms, run_id, limit, maxlen = whole(ARGV[1]), ARGV[2], whole(ARGV[3]), whole(ARGV[4])
if ttl_ms == nil or ttl_ms == 0 then return redis.error_reply('RAC_BADARG ttl_ms') end
if run_id == '' then return redis.error_reply('RAC_BADARG run_id') end
if limit == nil or limit == 0 or limit > 1000 then return redis.error_reply('RAC_BADARG limit') end
if maxlen == nil or maxlen == 0 then return redis.error_reply('RAC_BADARG findings maxlen') end
local reset = epoch_error()
if reset then return redis.error_reply(reset) end

local now = now_ms()
local at = string.format('%d', now)

if redis.call('EXISTS', KEYS[4]) == 0 then
  local state, score = lost_state(KEYS[1], KEYS[2], KEYS[3], run_id)
  if state == 2 then return { 2, now, 0 } end
  if state == 1 then
    redis.call('ZREM', KEYS[1], run_id)
    emit(KEYS[7], maxlen, 'type', 'EXPIRED', 'run_id', run_id, 'at_ms', at,
      'source', 'end', 'due_ms', score)
    return { 1, now, 0 }
  end
end

local popped = redis.call('ZPOPMIN', KEYS[4], limit)
if #popped > 0 then
  local keys = {}
  for i = 1, #popped, 2 do keys[#keys + 1] = popped[i] end
  local records = redis.call('HMGET', KEYS[3], unpack_all(keys))
  local marks, stale = {}, 0
  for j, key in ipairs(keys) do
    local status, acked_at, late, live = nil, 0, '0', '0'
    if records[j] then status, acked_at, late, live = parse_status(records[j]) end
    if status == 'PENDING' then
      local domain, action = string.match(key, '^([^|]*)|(.*)$')
      emit(KEYS[7], maxlen, 'type', 'MISSING', 'run_id', run_id, 'at_ms', at,
        'source', 'end', 'domain', domain, 'action', action, 'due_ms', popped[2 * j])
      marks[#marks + 1] = key
      marks[#marks + 1] = status_record('MISSING', 0, late, live)
      if live == '1' then stale = stale + 1 end
    end
  end
  if #marks > 0 then
    redis.call('HSET', KEYS[3], unpack_all(marks))
    redis.call('HINCRBY', KEYS[3], COUNTERS[1], #marks / 2)
    if stale > 0 then redis.call('HINCRBY', KEYS[3], COUNTERS[4], stale) end
  end
end
local left = redis.call('ZCARD', KEYS[4])
if left == 0 then
  redis.call('ZREM', KEYS[1], run_id)
  settle(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], maxlen, run_id, 'end', now)
else
  reindex_run(KEYS[1], KEYS[4], run_id)
end
refresh_ttl(2, 5, ttl_ms)
return { 0, now, left }
