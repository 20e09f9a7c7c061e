--[[
  Shared helpers, inlined by the loader wherever a script says `-- @include "common"`.
  Every helper is pure or touches only keys it is handed (which came from KEYS).
  Helpers never raise: they return an error text and the script returns
  redis.error_reply, because an error() raised inside a helper loses its text on
  the embedded backend.
]]

-- Server time in whole milliseconds (one clock for every worker).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A non-negative whole number from an ARGV text, or nil.
local function whole(text)
  local n = tonumber(text)
  if n == nil or n < 0 or n ~= math.floor(n) or n > 9007199254740991 then
    return nil
  end
  return n
end

-- Status record: "STATUS|acked_at_ms|late" (late is 0 or 1).
local function parse_status(record)
  local status, acked_at, late = string.match(record, '^(%u+)|(%d+)|([01])$')
  return status, tonumber(acked_at), late
end

local function status_record(status, acked_at, late)
  return status .. '|' .. string.format('%d', acked_at) .. '|' .. late
end

-- Keep the shard's pending index in step with one run's due set: the run is
-- scored by its earliest PENDING due time, and leaves the index when none is left.
local function reindex_run(pending_key, due_key, run_id)
  local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', pending_key, first[2], run_id)
  else
    redis.call('ZREM', pending_key, run_id)
  end
end

-- Refresh the TTL of KEYS[first .. first + count - 1].
local function refresh_ttl(first, count, ttl_ms)
  for i = first, first + count - 1 do
    redis.call('PEXPIRE', KEYS[i], ttl_ms)
  end
end
