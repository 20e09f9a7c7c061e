#!lua flags=allow-oom
--[[
  init_meta: record the store's layout once, and check it on every start-up.

  The shard count decides which key holds a run; a store that started with
  another count would look for runs in the wrong place, so a mismatch is an
  error, never a silent re-shard.

  Flagged allow-oom: a store must be able to start (and read) while the server
  is at maxmemory; the only write is a two-field hash, once per store's lifetime.

  KEYS[1]: P:meta  hash  shards -> count, layout -> version

  ARGV[1]: shard count (whole number > 0)
  ARGV[2]: key layout version

  Reply    the shard count stored (equal to ARGV[1]).
  Errors   "RAC_BADARG <what>" for a malformed call;
           "RAC_SHARDS stored=<n> requested=<m>" when the store was created with
           another shard count; "RAC_LAYOUT stored=<v> requested=<w>" likewise for
           the layout version. Nothing is written in any of these cases.
]]
if #KEYS ~= 1 or #ARGV ~= 2 then return redis.error_reply('RAC_BADARG expected 1 key and 2 arguments') end
local shards = tonumber(ARGV[1])
if shards == nil or shards < 1 or shards ~= math.floor(shards) then
  return redis.error_reply('RAC_BADARG shard count')
end
local stored = redis.call('HMGET', KEYS[1], 'shards', 'layout')
if stored[1] and stored[1] ~= ARGV[1] then
  return redis.error_reply('RAC_SHARDS stored=' .. stored[1] .. ' requested=' .. ARGV[1])
end
if stored[2] and stored[2] ~= ARGV[2] then
  return redis.error_reply('RAC_LAYOUT stored=' .. stored[2] .. ' requested=' .. ARGV[2])
end
if not stored[1] or not stored[2] then
  redis.call('HSET', KEYS[1], 'shards', ARGV[1], 'layout', ARGV[2])
end
return shards
