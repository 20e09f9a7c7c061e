#!lua flags=no-writes
--[[
  read_expectations: one consistent snapshot of a run's expectations and statuses.

  KEYS[1]: P:{s}:exp:<run>  hash  "domain|action" -> encoded expectation
  KEYS[2]: P:{s}:st:<run>   hash  "domain|action" -> "STATUS|acked_at_ms|late|live"

  ARGV     none

  Reply    { HGETALL exp, HGETALL st } as two flat field/value arrays.
  Errors   "RAC_BADARG <what>" for a malformed call.
]]
if #KEYS ~= 2 then return redis.error_reply('RAC_BADARG expected 2 keys') end
return { redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]) }
