#!lua
--[[
  record_finding: append a reconciliation verdict to the shard's findings stream,
  unless it is the run's verdict already.

  The reconciler reads a run, decides it is STALE or INCOMPLETE, and records
  that here, so that alerting can subscribe to the stream instead of polling.
  The verdict is appended only when it differs from the last one pushed for the
  run (by a script that settled it, or by an earlier record_finding), and then
  becomes the run's last verdict: repeated reconciles, and a call re-sent after
  a lost reply, append nothing more. The event's time is server time.

  KEYS[1]: P:{s}:st:<run>    hash    the run's statuses; its "#verdict" field is the
                                     last verdict pushed (nothing is recorded when the
                                     run has no keys left)
  KEYS[2]: P:{s}:findings    stream  findings events of the run's shard
  KEYS[3]: P:{s}:epoch       string  the shard's store epoch (reset detection)

  ARGV[1]: findings stream bound (whole number > 0; approximate MAXLEN)
  ARGV[2]: event type: STALE | INCOMPLETE
  ARGV[3]: run_id
  ARGV[4..#ARGV-1] further fields as name, value pairs (names must not be
           type, run_id, at_ms or source)
  ARGV[#ARGV]: the store epoch the client opened with (RAC_RESET when it differs)

  Reply    the event's stream id, or 0 when nothing was appended (the run's
           verdict already, or the run is gone).
  Errors   "RAC_BADARG <what>" when an argument is malformed; nothing is written.
           "RAC_RESET <what>" when the shard's epoch is gone or new (the server
           lost the store's data since the client opened it); nothing is written.
]]
-- @include "common"

local TYPES = { STALE = true, INCOMPLETE = true }
local RESERVED = { type = true, run_id = true, at_ms = true, source = true }

if #KEYS ~= 3 or #ARGV < 4 or #ARGV % 2 ~= 0 then
  return redis.error_reply('RAC_BADARG expected 3 keys and 4 + 2k arguments')
end
local maxlen = whole(ARGV[1])
if maxlen == nil or maxlen == 0 then return redis.error_reply('RAC_BADARG findings maxlen') end
if not TYPES[ARGV[2]] then return redis.error_reply('RAC_BADARG event type') end
if ARGV[3] == '' then return redis.error_reply('RAC_BADARG run_id') end
for i = 4, #ARGV - 1, 2 do
  if ARGV[i] == '' or RESERVED[ARGV[i]] then return redis.error_reply('RAC_BADARG field name') end
end
local reset = epoch_error()
if reset then return redis.error_reply(reset) end

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], VERDICT) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], VERDICT, ARGV[2])
local fields = { 'type', ARGV[2], 'run_id', ARGV[3], 'at_ms', string.format('%d', now_ms()),
  'source', 'reconcile' }
for i = 4, #ARGV - 1 do fields[#fields + 1] = ARGV[i] end
return emit(KEYS[2], maxlen, unpack_all(fields))
