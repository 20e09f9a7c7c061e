#!lua
--[[
  clear_run: delete every key of one run and its pending-index entry.

  KEYS[1]: P:{s}:pending     zset  run_id -> earliest PENDING due (ms)
  KEYS[2]: P:{s}:exp:<run>   hash  expectations
  KEYS[3]: P:{s}:st:<run>    hash  statuses
  KEYS[4]: P:{s}:due:<run>   zset  due times
  KEYS[5]: P:{s}:acks:<run>  list  acks
  KEYS[6]: P:{s}:ackid:<run> hash  ack ids
  KEYS[7]: P:{s}:epoch       string  the shard's store epoch (reset detection)

  ARGV[1]: run_id (member of the pending index)
  ARGV[2]: the store epoch the client opened with (RAC_RESET when it differs)

  Reply    integer: how many of the run's keys existed (0 when it was unknown).
  Errors   "RAC_BADARG <what>" for a malformed call; nothing is written.
           "RAC_RESET <what>" when the shard's epoch is gone or new (the server
           lost the store's data since the client opened it); nothing is written.
]]
-- @include "common"

if #KEYS ~= 7 or #ARGV ~= 2 or ARGV[1] == '' then
  return redis.error_reply('RAC_BADARG expected 7 keys, a run_id and the store epoch')
end
local reset = epoch_error()
if reset then return redis.error_reply(reset) end
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
