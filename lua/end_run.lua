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

local ttl_ms, run_id, limit, maxlen, invalid = marking_args()
if invalid then return redis.error_reply(invalid) end

local now = now_ms()
local at = string.format('%d', now)

local lost = expire_lost_run(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7], maxlen, run_id,
  'end', at)
if lost then return { lost, now, 0 } end

mark_missing(KEYS[3], KEYS[7], maxlen, run_id, 'end', at, redis.call('ZPOPMIN', KEYS[4], limit))
local left = redis.call('ZCARD', KEYS[4])
if left == 0 then
  redis.call('ZREM', KEYS[1], run_id)
  settle(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], maxlen, run_id, 'end', now)
else
  reindex_run(KEYS[1], KEYS[4], run_id)
end
refresh_ttl(2, 5, ttl_ms)
return { 0, now, left }
