#!lua
--[[
  sweep_run: the deadline sweep of one run.

  Marks every PENDING expectation of the run whose due time has passed
  (server time > due) MISSING (at most `limit` of them per call, earliest first),
  takes them out of the due set, re-scores the run in the shard's pending index
  (or removes it when nothing is PENDING any more) and appends one MISSING
  event per mark to the shard's findings stream. When the marks settle the run
  (nothing PENDING) its verdict (INCOMPLETE or STALE) is appended too, once.
  A run that is in the index but whose due set is gone (its keys expired, even
  if acks that came afterwards made some of them anew) is removed from the index
  and reported by an EXPIRED event: that too is an audit finding.
  Running it twice marks nothing twice: a marked expectation is no longer due.

  KEYS[1]: P:{s}:pending     zset    run_id -> earliest PENDING due (ms)
  KEYS[2]: P:{s}:exp:<run>   hash    "domain|action" -> encoded expectation
  KEYS[3]: P:{s}:st:<run>    hash    "domain|action" -> "STATUS|acked_at_ms|late|live",
                                     and the run's counters and last verdict ("#..." fields)
  KEYS[4]: P:{s}:due:<run>   zset    PENDING "domain|action" -> due (ms)
  KEYS[5]: P:{s}:acks:<run>  list    (TTL refresh only)
  KEYS[6]: P:{s}:ackid:<run> hash    (TTL refresh only)
  KEYS[7]: P:{s}:findings    stream  findings events of the shard
  KEYS[8]: P:{s}:epoch       string  the shard's store epoch (reset detection)

  ARGV[1]: ttl_ms of every run key (whole number > 0)
  ARGV[2]: run_id (member of the pending index)
  ARGV[3]: limit: most expectations marked by this call (whole number 1..1000)
  ARGV[4]: findings stream bound (whole number > 0; approximate MAXLEN)
  ARGV[5]: the store epoch the client opened with (RAC_RESET when it differs)

  Reply    { state, now_ms, next_due, ... }
           state 0 (swept): next_due is the run's score left in the index, or
             -1 when it left the index; then per mark: key, due_ms, event id
           state 1 (expired): next_due is the score the run had in the index;
             then the EXPIRED event id
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

local lost, score, expired = expire_lost_run(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7],
  maxlen, run_id, 'sweep', at)
if lost == 2 then return { 2, now, -1 } end
if lost == 1 then return { 1, now, tonumber(score), expired } end

-- Overdue means server time > due, as for a late ack in add_acks. The overdue
-- keys are the lowest scores of the due set, so ZPOPMIN takes exactly them.
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. at, 'WITHSCORES', 'LIMIT', 0, limit)
local reply = { 0, now, -1 }
if #due > 0 then
  redis.call('ZPOPMIN', KEYS[4], #due / 2)
  local marked = mark_missing(KEYS[3], KEYS[7], maxlen, run_id, 'sweep', at, due)
  for _, value in ipairs(marked) do reply[#reply + 1] = value end
  if #marked > 0 then refresh_ttl(2, 5, ttl_ms) end
end
local gone, left_score = reindex_run(KEYS[1], KEYS[4], run_id)
if not gone then
  reply[3] = tonumber(left_score)
elseif #due > 0 then
  settle(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], maxlen, run_id, 'sweep', now)
end
return reply
