-- The `uwsgi` Lua API of tsuwsgi's Lua bridge (docs/lua.md, "The uwsgi API").
--
-- uWSGI's lua plugin registers a global table `uwsgi` in every lua_State before it loads
-- any file, so apps and --lua-load files call `uwsgi.log(...)` without a require. The
-- bridge does the same with this table, and also puts it in package.loaded, so a
-- `local uwsgi = require "uwsgi"` finds it.
--
-- Only what the tsuwsgi core offers so far is here. Functions over core services that do
-- not exist yet (cache, RPC, signals, locks, websockets, the async API) are absent rather
-- than stubbed, so `if uwsgi.cache_get then ... end` tells an app the truth; the bridge adds
-- a hint to the error when an app calls one of them (see PENDING below).

local uwsgi = {}

-- Filled by setup(): what the bridge knows about its worker.
local config = {}
local bridge = nil

--- Called once by the bridge, before any file is loaded.
-- cfg: TSUWSGI_BRIDGE_CONFIG; b: the bridge's callbacks (send_event, log_line, counters).
function uwsgi._setup(cfg, b)
  config = cfg
  bridge = b
  -- Static values are fields, as uWSGI's lua plugin has `uwsgi.version` and Python has
  -- `uwsgi.numproc`, `uwsgi.hostname`, `uwsgi.opt`...
  uwsgi.version = tostring(cfg.version or '2.0.28-tsuwsgi')
  uwsgi.numproc = tonumber(cfg.processes) or 1
  uwsgi.hostname = tostring(cfg.hostname or '')
  uwsgi.started_on = tonumber(cfg.startedOn) or 0
  uwsgi.buffer_size = tonumber(cfg.bufferSize) or 4096
  -- The options as uWSGI exposes them: single values as strings, repeated options as
  -- arrays of strings, flags as true.
  local opt = {}
  for name, value in pairs(cfg.options or {}) do
    if type(value) == 'table' then
      local list = {}
      for i, v in ipairs(value) do list[i] = tostring(v) end
      opt[name] = list
    elseif value == true then
      opt[name] = true
    elseif value ~= false then
      opt[name] = tostring(value)
    end
  end
  uwsgi.opt = opt
end

--- 1-based worker id, stable across respawns of this slot.
function uwsgi.worker_id()
  return tonumber(config.workerId) or 1
end

--- The pid of the supervising tsuwsgi process.
function uwsgi.masterpid()
  return tonumber(config.masterPid) or 0
end

--- Bridges only run workers: never a mule.
function uwsgi.mule_id()
  return 0
end

--- True when this worker was started by a reload.
function uwsgi.is_a_reload()
  return config.isReload == true
end

--- The number of requests this worker handled before the one in progress, plus one.
function uwsgi.request_id()
  return bridge.requests() + 1
end

--- Requests completed by this worker.
function uwsgi.total_requests()
  return bridge.requests()
end

--- One line in the server log (all arguments, concatenated with tostring).
function uwsgi.log(...)
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  bridge.log_line(table.concat(parts))
  return true
end

--- [rss, vsz] of this process in bytes, as uWSGI's uwsgi.mem() (Linux /proc).
function uwsgi.mem()
  local f = io.open('/proc/self/statm', 'r')
  if not f then return 0, 0 end
  local vsz, rss = f:read('*n', '*n')
  f:close()
  return (rss or 0) * 4096, (vsz or 0) * 4096
end

--- Ask the server for a graceful reload of the app workers (like SIGHUP).
function uwsgi.reload()
  return bridge.send_event({ event = 'reload' })
end

--- Ask the server to stop gracefully.
function uwsgi.stop()
  return bridge.send_event({ event = 'stop' })
end

--- uwsgi.postfork(fn): run fn once the apps are loaded, before the first request (every
-- tsuwsgi worker loads its own apps, so this is "after fork" in uWSGI's terms).
function uwsgi.postfork(fn)
  if type(fn) ~= 'function' then error('uwsgi.postfork needs a function', 2) end
  bridge.postfork[#bridge.postfork + 1] = fn
  return true
end

--- uwsgi.atexit(fn): run fn when the worker stops gracefully.
function uwsgi.atexit(fn)
  if type(fn) ~= 'function' then error('uwsgi.atexit needs a function', 2) end
  bridge.atexit[#bridge.atexit + 1] = fn
  return true
end

-- uWSGI lua API functions that need a core service tsuwsgi has not built yet, with that
-- service's name. The bridge uses it to explain "attempt to call a nil value (field
-- 'cache_get')". Not part of the API: the underscore keeps it out of apps' way.
uwsgi._PENDING = {
  cache_get = 'the cache', cache_set = 'the cache', cache_update = 'the cache', cache_del = 'the cache',
  cache_exists = 'the cache', cache_clear = 'the cache',
  register_rpc = 'RPC', rpc = 'RPC', call = 'RPC',
  register_signal = 'signals', signal = 'signals',
  lock = 'locks', unlock = 'locks',
  websocket_handshake = 'websockets', websocket_recv = 'websockets', websocket_recv_nb = 'websockets',
  websocket_send = 'websockets', websocket_send_binary = 'websockets',
  websocket_send_from_sharedarea = 'websockets and sharedarea', websocket_send_binary_from_sharedarea = 'websockets and sharedarea',
  async_sleep = 'async mode', async_connect = 'async mode', is_connected = 'async mode', close = 'async mode',
  wait_fd_read = 'async mode', wait_fd_write = 'async mode', ready_fd = 'async mode', send = 'async mode', recv = 'async mode',
  connection_fd = 'access to the client connection',
}

return uwsgi
