#!lua
--[[
  clear_run: delete every key of one run and its pending-index entry.

  KEYS[1]: P:{s}:pending     zset  run_id -> earliest PENDING due (ms)
  KEYS[2]: P:{s}:exp:<run>   hash  expectations
  KEYS[3]: P:{s}:st:<run>    hash  statuses
  KEYS[4]: P:{s}:due:<run>   zset  due times
  KEYS[5]: P:{s}:acks:<run>  list  acks
  KEYS[6]: P:{s}:ackid:<run> hash  ack ids

  ARGV[1]: run_id (member of the pending index)

  Reply    integer: how many of the run's keys existed (0 when it was unknown).
  Errors   "RAC_BADARG <what>" for a malformed call; nothing is written.
]]
if #KEYS ~= 6 or #ARGV ~= 1 or ARGV[1] == '' then
  return redis.error_reply('RAC_BADARG expected 6 keys and a run_id')
end
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
