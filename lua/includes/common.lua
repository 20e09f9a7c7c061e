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
-- Returns true when the run has no PENDING expectation left, else false and its score.
local function reindex_run(pending_key, due_key, run_id)
  local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', pending_key, first[2], run_id)
    return false, first[2]
  end
  redis.call('ZREM', pending_key, run_id)
  return true
end

-- Every value of an array as arguments (Lua 5.4 on the embedded backend, 5.1 on Redis).
local unpack_all = table.unpack or unpack

-- Open-issue counter of a run, a field of its st hash (no '|', so it is never an
-- expectation key): expected keys that are FAILED or MISSING, plus acked keys
-- that no expectation declares (drift). Every script that moves a status keeps
-- it in step, so "clean" is one HGET, whatever the run's size.
local ISSUES = '#issues'

local function add_issues(st_key, delta)
  if delta ~= 0 then redis.call('HINCRBY', st_key, ISSUES, delta) end
end

-- Append one event to the shard's findings stream (bounded: approximate MAXLEN).
-- The fields after maxlen are name, value pairs; returns the entry id.
local function emit(stream_key, maxlen, ...)
  return redis.call('XADD', stream_key, 'MAXLEN', '~', maxlen, '*', ...)
end

-- After a change that can finish a run: when nothing is PENDING and the run has
-- no open issue, append a COMPLETE event. Returns true when it did.
local function complete_if_clean(st_key, due_key, stream_key, maxlen, run_id, source, now)
  if redis.call('ZCARD', due_key) > 0 then return false end
  if tonumber(redis.call('HGET', st_key, ISSUES) or '0') ~= 0 then return false end
  emit(stream_key, maxlen, 'type', 'COMPLETE', 'run_id', run_id,
    'at_ms', string.format('%d', now), 'source', source)
  return true
end

-- Refresh the TTL of KEYS[first .. first + count - 1].
local function refresh_ttl(first, count, ttl_ms)
  for i = first, first + count - 1 do
    redis.call('PEXPIRE', KEYS[i], ttl_ms)
  end
end
