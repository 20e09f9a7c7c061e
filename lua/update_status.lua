#!lua
--[[
  update_status: move one expectation to a new status by hand.

  Allowed moves (anything else is refused, nothing returns to PENDING):
    same status            -> no change (so a re-sent call is harmless)
    PENDING -> ACKED | FAILED | MISSING   (ACKED/FAILED past due are marked late)
    MISSING -> ACKED | FAILED             (marked late)
    FAILED  -> ACKED                      (late mark kept)
  A move to MISSING appends a MISSING event to the shard's findings stream; a
  move that leaves the run settled (nothing PENDING) with another verdict than
  the one last pushed appends that verdict (COMPLETE, INCOMPLETE or STALE).

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
  ARGV[3]: expectation key "domain|action"
  ARGV[4]: new status: PENDING | ACKED | FAILED | MISSING
  ARGV[5]: findings stream bound (whole number > 0; approximate MAXLEN)
  ARGV[6]: the store epoch the client opened with (RAC_RESET when it differs)

  Reply    1 when the expectation exists (now in the new status), 0 when it does not.
  Errors   "RAC_BADARG <what>" for a malformed argument;
           "RAC_TRANSITION <from> -> <to>" for a move the state machine forbids;
           "RAC_RESET <what>" when the shard's epoch is gone or new (the server
           lost the store's data since the client opened it).
           Nothing is written in any of these cases.
]]
-- @include "common"

local STATUSES = { PENDING = true, ACKED = true, FAILED = true, MISSING = true }
local ALLOWED = {
  PENDING = { ACKED = true, FAILED = true, MISSING = true },
  MISSING = { ACKED = true, FAILED = true },
  FAILED = { ACKED = true },
  ACKED = {},
}

local ttl_ms = whole(ARGV[1])
local run_id, key, target = ARGV[2], ARGV[3], ARGV[4]
local maxlen = whole(ARGV[5])
if #KEYS ~= 8 or #ARGV ~= 6 then return redis.error_reply('RAC_BADARG expected 8 keys and 6 arguments') end
if ttl_ms == nil or ttl_ms == 0 then return redis.error_reply('RAC_BADARG ttl_ms') end
if maxlen == nil or maxlen == 0 then return redis.error_reply('RAC_BADARG findings maxlen') end
if run_id == '' then return redis.error_reply('RAC_BADARG run_id') end
if not string.find(key, '|', 1, true) then return redis.error_reply('RAC_BADARG expectation key') end
if not STATUSES[target] then return redis.error_reply('RAC_BADARG status') end
local reset = epoch_error()
if reset then return redis.error_reply(reset) end

if redis.call('HEXISTS', KEYS[2], key) == 0 then return 0 end
local record = redis.call('HGET', KEYS[3], key)
local status, acked_at, late, live = 'PENDING', 0, '0', '0'
if record then status, acked_at, late, live = parse_status(record) end
if status == target then return 1 end
if not ALLOWED[status][target] then
  return redis.error_reply('RAC_TRANSITION ' .. status .. ' -> ' .. target)
end

local now = now_ms()
local settled, due = false, nil
if status == 'PENDING' then
  due = tonumber(redis.call('ZSCORE', KEYS[4], key))
  redis.call('ZREM', KEYS[4], key)
  settled = reindex_run(KEYS[1], KEYS[4], run_id)
  if target ~= 'MISSING' and due ~= nil and now > due then late = '1' end
end
if status == 'MISSING' then late = '1' end
acked_at = (target == 'MISSING') and 0 or now
redis.call('HSET', KEYS[3], key, status_record(target, acked_at, late, live))
local moved = recount(KEYS[3], status, true, target, true, live)
if target == 'MISSING' then
  local domain, action = string.match(key, '^([^|]*)|(.*)$')
  emit(KEYS[7], maxlen, 'type', 'MISSING', 'run_id', run_id, 'at_ms', string.format('%d', now),
    'source', 'status', 'domain', domain, 'action', action,
    'due_ms', string.format('%d', due or 0))
end
if settled or moved then
  settle(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7], maxlen, run_id, 'status', now)
end
refresh_ttl(2, 5, ttl_ms)
return 1
