#!lua
--[[
  add_expectations: declare expectations for one run, insert-if-absent.

  An expectation whose (domain, action) is already declared is left exactly as
  it is (re-sending the call changes nothing). A new one becomes PENDING, due at
  server time + deadline_ms, unless an ack for it arrived first (out of order):
  then it keeps the status that ack gave it and is not due at all (the ack is
  no longer drift). When the declaration leaves the run settled (nothing
  PENDING: every new expectation adopted an ack) with another verdict than the
  one last pushed, the verdict is appended to the shard's findings stream.
  The run's keys then live at least ttl_ms after the latest deadline this call
  declares (and never less than they had): a deadline never outlives its run's
  keys, so an ack before it is never drift and a run that expires while pending
  is reported EXPIRED by the sweep (docs/reliability.md, "TTL and deadlines").

  KEYS[1]: P:{s}:pending     zset  run_id -> earliest PENDING due (ms)
  KEYS[2]: P:{s}:exp:<run>   hash  "domain|action" -> encoded expectation
  KEYS[3]: P:{s}:st:<run>    hash  "domain|action" -> "STATUS|acked_at_ms|late|live",
                                   and the run's counters and last verdict ("#..." fields)
  KEYS[4]: P:{s}:due:<run>   zset  PENDING "domain|action" -> due (ms)
  KEYS[5]: P:{s}:acks:<run>  list  (TTL refresh only)
  KEYS[6]: P:{s}:ackid:<run> hash  (TTL refresh only)
  KEYS[7]: P:{s}:findings    stream  findings events of the shard
  KEYS[8]: P:{s}:epoch       string  the shard's store epoch (reset detection)

  ARGV[1]: ttl_ms of every run key (whole number > 0)
  ARGV[2]: run_id (member of the pending index)
  ARGV[3]: n, the number of expectations that follow
  ARGV[4 + 4(i-1)]: expectation key "domain|action"
  ARGV[5 + 4(i-1)]: deadline_ms (whole number >= 0)
  ARGV[6 + 4(i-1)]: live: "1" for a liveness expectation (its MISSING makes the run
                    STALE), else "0"
  ARGV[7 + 4(i-1)]: encoded expectation (opaque bytes)
  ARGV[4 + 4n]:     findings stream bound (whole number > 0; approximate MAXLEN)
  ARGV[5 + 4n]:     the store epoch the client opened with (RAC_RESET when it differs)

  Reply    integer: how many expectations were newly declared.
  Errors   "RAC_BADARG <what>" when an argument is malformed; nothing is written.
           "RAC_RESET <what>" when the shard's epoch is gone or new (the server
           lost the store's data since the client opened it); nothing is written.
]]
-- @include "common"

local ttl_ms = whole(ARGV[1])
local run_id = ARGV[2]
local n = whole(ARGV[3])
if #KEYS ~= 8 then return redis.error_reply('RAC_BADARG expected 8 keys') end
if ttl_ms == nil or ttl_ms == 0 then return redis.error_reply('RAC_BADARG ttl_ms') end
if run_id == nil or run_id == '' then return redis.error_reply('RAC_BADARG run_id') end
if n == nil or #ARGV ~= 5 + 4 * n then return redis.error_reply('RAC_BADARG argument count') end
local maxlen = whole(ARGV[#ARGV - 1])
if maxlen == nil or maxlen == 0 then return redis.error_reply('RAC_BADARG findings maxlen') end
for i = 0, n - 1 do
  local key = ARGV[4 + 4 * i]
  if key == '' or not string.find(key, '|', 1, true) then
    return redis.error_reply('RAC_BADARG expectation key ' .. i + 1)
  end
  if whole(ARGV[5 + 4 * i]) == nil then
    return redis.error_reply('RAC_BADARG deadline_ms of expectation ' .. i + 1)
  end
  local live = ARGV[6 + 4 * i]
  if live ~= '0' and live ~= '1' then
    return redis.error_reply('RAC_BADARG live flag of expectation ' .. i + 1)
  end
end
local reset = epoch_error()
if reset then return redis.error_reply(reset) end

local now = now_ms()
local added = 0
-- the latest deadline declared now: the run's keys must outlive it (refresh_ttl below)
local longest = 0
for i = 0, n - 1 do
  local key, live = ARGV[4 + 4 * i], ARGV[6 + 4 * i]
  if redis.call('HSETNX', KEYS[2], key, ARGV[7 + 4 * i]) == 1 then
    added = added + 1
    local record = redis.call('HGET', KEYS[3], key)
    if not record then
      local deadline = whole(ARGV[5 + 4 * i])
      longest = math.max(longest, deadline)
      redis.call('HSET', KEYS[3], key, status_record('PENDING', 0, '0', live))
      redis.call('ZADD', KEYS[4], now + deadline, key)
    else
      -- an ack that came first is adopted: no longer drift, and now with its liveness mark
      local status, acked_at, late = parse_status(record)
      redis.call('HSET', KEYS[3], key, status_record(status, acked_at, late, live))
      recount(KEYS[3], status, false, status, true, live)
    end
  end
end
if added > 0 and reindex_run(KEYS[1], KEYS[4], run_id) then
  settle(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], maxlen, run_id, 'declare', now)
end
refresh_ttl(2, 5, ttl_ms + longest)
return added
