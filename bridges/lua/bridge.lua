-- tsuwsgi's Lua bridge: hosts WSAPI apps and serves them over the uwsgi protocol.
--
-- The core starts one such process per pool slot as `lua5.4 bridge.lua` (or the
-- interpreter named with --lua-bin) with:
--     fd 3  the pool's unix stream socket (bound; we call listen() on it),
--     fd 4  the control channel (newline-delimited JSON, both ways),
--     TSUWSGI_BRIDGE_CONFIG  JSON describing the worker and the apps to load.
-- The full contract is docs/bridge-protocol.md; section numbers below (§2, §3.1...) refer
-- to it, and docs/lua.md describes what WSAPI apps see.
--
-- Lua's standard library has no sockets, so the bridge needs LuaSocket (Debian lua-socket,
-- built for 5.1/LuaJIT up to 5.4). LuaSocket cannot open an inherited descriptor by number,
-- but its socket objects can adopt one: an unused unix socket object gets fd 3 (or 4) with
-- :setfd(). fd 3 becomes a server with :listen(); fd 4 needs the "client" class (whose
-- methods are send/receive), which LuaSocket only gives to connected sockets, so the
-- object's metatable is switched to the registered `unixstream{client}` class: the
-- userdata is the same C struct for every class, only the method table differs.
--
-- Shape of the process: single-threaded, one request at a time (Lua has no threads; the
-- core never gives a lua pool more than one connection per process). Concurrency comes
-- from --processes. The main loop waits on the pool socket and the control channel with
-- select(), accepts a connection and serves it (one request, or many once the core sent the
-- hello packet), then waits again. Between requests it waits on the connection and the
-- control channel together, so a stop is obeyed at once. While the app runs, the control
-- channel is only read when --harakiri is set (a debug hook, see install_watchdog), which is
-- what lets harakiri print the app's stack.
--
-- Works with Lua 5.1 (LuaJIT) to 5.4: no integer division, no bit operators, no goto.

local socket = require('socket')
local unix = require('socket.unix')

local byte, sub, char, find, lower, format = string.byte, string.sub, string.char, string.find, string.lower, string.format
local concat = table.concat
local floor = math.floor
local traceback = debug.traceback

local BRIDGE_API = 1
local UWSGI_FAILED_APP_CODE = 22 -- exit status when an app cannot be loaded (§2)
local HELLO_MODIFIER1 = 99 -- the hello packet (§3.1)
-- Request bodies up to this size are read before the app runs and served from memory;
-- bigger ones are read from the connection as the app asks for them.
local BUFFERED_BODY_LIMIT = 1048576
-- Body chunks up to this size go out in the same write as their framing (and the first one
-- with the headers); bigger ones are written separately, never copied to prepend a few bytes.
local COALESCE_LIMIT = 65536
-- How many VM instructions run between two looks at the control channel while an app runs
-- (only with --harakiri): about a millisecond of Lua code.
local WATCHDOG_COUNT = 100000

-- Framing of the response in progress (§3.1 "self-delimiting").
local MODE_NONE = 0 -- no body may be sent (HEAD, 1xx, 204, 304): bytes are dropped
local MODE_RAW = 1 -- bytes as the app gives them (connection close delimits, or the app framed it)
local MODE_LENGTH = 2 -- exactly Content-Length bytes: extra dropped, missing -> close
local MODE_CHUNKED = 3 -- we added Transfer-Encoding: chunked

local HERE = (arg and arg[0] or ''):match('^(.*)/[^/]*$') or '.'
local BRIDGE_FILE = arg and arg[0] or 'bridge.lua'
local json = dofile(HERE .. '/json.lua')

-- Process state -----------------------------------------------------------------------------

local CONFIG = {} -- TSUWSGI_BRIDGE_CONFIG
local PLUGIN = {} -- CONFIG.plugin
local WORKER_ID = 1
local CONTROL -- the control channel (fd 4)
local LISTEN -- the pool socket (fd 3)
local STOPPING = false -- a graceful stop was asked: serve what was received, then exit
local CATCH_EXCEPTIONS = false
local GC_FREQ = 0 -- --lua-gc-freq
local REQUESTS = 0 -- requests served by this process
local POSTFORK, ATEXIT = {}, {}

local APPS, APPS_BY_MOUNT, DEFAULT_APP, SINGLE_APP = {}, {}, nil, nil

-- The connection being served: one at a time, so plain upvalues.
local SOCK
local PERSISTENT = false

-- The response being written.
local R_PROTO, R_IS_HEAD, R_SENT, R_MODE, R_REMAIN

-- Logging and exits ---------------------------------------------------------------------------

local stderr = io.stderr

local function log_line(message)
  message = tostring(message)
  if sub(message, -1) ~= '\n' then message = message .. '\n' end
  -- One write, so lines of parallel bridges do not interleave.
  stderr:write(message)
end

local function hard_exit(status)
  io.stdout:flush()
  stderr:flush()
  os.exit(status)
end

local function run_atexit()
  for _, fn in ipairs(ATEXIT) do
    local ok, err = xpcall(fn, traceback)
    if not ok then log_line('lua bridge: uwsgi.atexit function failed: ' .. tostring(err)) end
  end
  ATEXIT = {}
end

-- The control channel (§4) ----------------------------------------------------------------------

local function send_event(event)
  if not CONTROL then return false end
  local ok = CONTROL:send(json.encode(event) .. '\n')
  return ok ~= nil
end

local app_traceback -- below

local function dump_stack(in_app)
  local lines = { format('*** lua bridge stack dump (pid %s, worker %d) ***', tostring(CONFIG.pid or '?'), WORKER_ID) }
  if in_app then
    -- From the watchdog hook: the frames of the app's code, innermost first.
    lines[#lines + 1] = (app_traceback(traceback('', 1)):gsub('^\n', ''))
  else
    lines[#lines + 1] = '  (idle: no request in progress)'
  end
  lines[#lines + 1] = '*** end of the stack dump ***'
  log_line(concat(lines, '\n'))
end

local function start_graceful_stop()
  STOPPING = true
end

-- Obey one control line. `in_app`: true when called from the watchdog hook while the app
-- runs (a stack dump then shows the app's frames), nil between requests.
local function obey(line, in_app)
  local ok, cmd = pcall(json.decode, line)
  if not ok or type(cmd) ~= 'table' then
    log_line('lua bridge: invalid control message ' .. sub(line, 1, 200))
    return
  end
  if cmd.cmd == 'stop' then
    if not cmd.graceful then hard_exit(0) end
    start_graceful_stop()
  elseif cmd.cmd == 'stack' then
    dump_stack(in_app)
  else
    log_line("lua bridge: unknown control command '" .. tostring(cmd.cmd) .. "'")
  end
end

-- Read and obey what the core sent; called when select() says the channel is readable. The
-- core writes whole lines, so a readable channel has at least one complete line (the
-- descriptor is blocking: LuaSocket cannot change that, see the header).
local function read_control(in_app)
  repeat
    local line, err = CONTROL:receive('*l')
    if not line then
      -- EOF (or an error): the core died, so do we (§1).
      hard_exit(0)
    end
    if find(line, '%S') then obey(line, in_app) end
  until not CONTROL:dirty()
end

-- Read the control channel if it has something, without waiting.
local CONTROL_SET = {}
local function poll_control(in_app)
  if CONTROL:dirty() then return read_control(in_app) end
  local readable = socket.select(CONTROL_SET, nil, 0)
  if readable[CONTROL] then read_control(in_app) end
end

-- With --harakiri, the core asks for a stack dump before it kills a worker stuck in a
-- request. Lua has no signal handlers, so a count hook looks at the control channel every
-- WATCHDOG_COUNT instructions of the app's code (a select() with no wait). Only with
-- --harakiri: a count hook slows Lua 5.x's interpreter down.
-- Limits: code in coroutines does not run the hook on Lua 5.2+ (hooks are per coroutine
-- there); LuaJIT's compiled code never runs hooks (measured: a hot loop gets no call); and
-- an app blocked in a C function (a socket read, os.execute) runs no Lua code. Harakiri
-- still kills the worker then, only without the dump.
local function install_watchdog()
  debug.sethook(function()
    poll_control(true)
  end, '', WATCHDOG_COUNT)
end

-- Adopt an inherited descriptor as a LuaSocket unix stream object (see the header).
local REGISTRY = debug.getregistry()
local function adopt(fd, class)
  local s = unix.stream()
  s:close() -- the fresh descriptor it opened; the object keeps working with the one we set
  s:setfd(fd)
  if class then
    local mt = REGISTRY[class]
    if not mt then error('LuaSocket has no ' .. class .. ' class (an unsupported LuaSocket version)', 0) end
    debug.setmetatable(s, mt)
  end
  return s
end

-- Receiving ----------------------------------------------------------------------------------

-- Thrown (as a table) when the connection to the core breaks.
local Disconnected = {}
Disconnected.__index = Disconnected
Disconnected.__tostring = function(e) return e.message end
local function disconnected(message)
  return setmetatable({ message = message }, Disconnected)
end

-- Exactly n bytes from the connection, or nil at EOF / on error.
local function recv_exact(n)
  local data, err, partial = SOCK:receive(n)
  if data then return data end
  while err == 'timeout' do
    data, err, partial = SOCK:receive(n, partial)
    if data then return data end
  end
  return nil
end

-- Up to n bytes (at least one, unless EOF): what is buffered, else what the next read brings.
local function recv_some(n)
  local data, err, partial = SOCK:receive(n)
  if data then return data end
  if partial and #partial > 0 then return partial end
  while err == 'timeout' do
    data, err, partial = SOCK:receive(n)
    if data then return data end
    if partial and #partial > 0 then return partial end
  end
  return nil
end

-- Wait for the next packet between requests: on the connection and the control channel
-- together, so a stop is seen at once. False when the connection should end.
local WAIT_SET = {}
local function wait_idle()
  while true do
    if SOCK:dirty() then return true end
    if STOPPING then
      -- Serve what the core already sent, do not wait for more: with the read side shut
      -- down, reads return the queued data, then EOF.
      SOCK:shutdown('receive')
      return true
    end
    WAIT_SET[1], WAIT_SET[2] = SOCK, CONTROL
    local readable = socket.select(WAIT_SET, nil, nil)
    if readable[CONTROL] then read_control(nil) end
    if readable[SOCK] then return true end
  end
end

-- The next packet: modifier1, vars (the bytes after the 4-byte header), modifier2; nil at EOF.
local function read_packet()
  if not wait_idle() then return nil end
  local head = recv_exact(4)
  if not head then return nil end
  local m1, lo, hi, m2 = byte(head, 1, 4)
  local size = lo + hi * 256
  local vars = size > 0 and recv_exact(size) or ''
  if not vars then return nil end
  return m1, vars, m2
end

-- wsapi_env.input --------------------------------------------------------------------------------

-- The request body as WSAPI's input object: read(n) as uWSGI's lua plugin does (up to n
-- bytes, "" at the end; no argument: the rest), plus file-like "*a"/"a" (the rest) and
-- "*l"/"l" (a line without its "\n", nil at the end) for apps written against CGI stdin.
local Input = {}
Input.__index = Input

-- A body held in memory.
local function memory_input(data)
  return setmetatable({ data = data, pos = 1 }, Input)
end

-- A body streamed from the connection (bigger than BUFFERED_BODY_LIMIT): `left` bytes not
-- yet read by the app.
local function stream_input(length)
  return setmetatable({ left = length, streamed = true }, Input)
end

-- Up to n bytes of the body ("" at the end).
local function input_take(self, n)
  if self.streamed then
    if n > self.left then n = self.left end
    if n <= 0 then return '' end
    local chunk = recv_some(n)
    if not chunk then
      error(disconnected(format('client disconnected while sending the request body (%d bytes missing)', self.left)), 0)
    end
    self.left = self.left - #chunk
    return chunk
  end
  local data, pos = self.data, self.pos
  if pos > #data then return '' end
  local chunk = sub(data, pos, pos + n - 1)
  self.pos = pos + #chunk
  return chunk
end

local function input_rest(self)
  if self.streamed then
    local parts, n = {}, 0
    while self.left > 0 do
      n = n + 1
      parts[n] = input_take(self, self.left)
    end
    return concat(parts)
  end
  local rest = sub(self.data, self.pos)
  self.pos = #self.data + 1
  return rest
end

local function input_line(self)
  local parts, n = {}, 0
  while true do
    local piece
    if self.streamed then
      if self.left <= 0 then break end
      piece = input_take(self, 1)
    else
      local data, pos = self.data, self.pos
      if pos > #data then break end
      local nl = find(data, '\n', pos, true)
      piece = sub(data, pos, nl or #data)
      self.pos = pos + #piece
    end
    if sub(piece, -1) == '\n' then
      n = n + 1
      parts[n] = sub(piece, 1, -2)
      return concat(parts)
    end
    n = n + 1
    parts[n] = piece
  end
  if n == 0 then return nil end
  return concat(parts)
end

function Input:read(what)
  if what == nil or what == '*a' or what == 'a' then return input_rest(self) end
  if what == '*l' or what == 'l' then return input_line(self) end
  local n = tonumber(what)
  if not n or n < 0 then error("input:read() takes a byte count, '*a' or '*l' (got " .. tostring(what) .. ')', 2) end
  if n == 0 then return input_rest(self) end -- uWSGI reads the rest for 0 too
  -- Streamed bodies: gather exactly n bytes (or what is left), as a file read would.
  if self.streamed then
    local first = input_take(self, n)
    if #first == n or self.left == 0 then return first end
    local parts, got = { first }, #first
    while got < n and self.left > 0 do
      local more = input_take(self, n - got)
      parts[#parts + 1] = more
      got = got + #more
    end
    return concat(parts)
  end
  return input_take(self, floor(n))
end

function Input:lines()
  return function() return input_line(self) end
end

-- The end of a request: whatever the app did not read is consumed. False if the connection broke.
function Input:finish()
  while self.streamed and self.left > 0 do
    local chunk = recv_some(self.left < 131072 and self.left or 131072)
    if not chunk then return false end
    self.left = self.left - #chunk
  end
  return true
end

-- wsapi_env.error: the server log.
local Errors = {}
Errors.__index = Errors
function Errors:write(...)
  local n = select('#', ...)
  for i = 1, n do stderr:write(tostring((select(i, ...)))) end
  return self
end
function Errors:flush() return self end
local ERRORS = setmetatable({}, Errors)

-- Sending ----------------------------------------------------------------------------------------

local function send_data(data)
  local last, err, partial = SOCK:send(data)
  if last then return end
  local from = (partial or 0) + 1
  while err == 'timeout' do
    last, err, partial = SOCK:send(data, from)
    if last then return end
    from = (partial or from - 1) + 1
  end
  error(disconnected('client disconnected: ' .. tostring(err)), 0)
end

local REASON = {
  [100] = 'Continue', [101] = 'Switching Protocols', [102] = 'Processing', [103] = 'Early Hints',
  [200] = 'OK', [201] = 'Created', [202] = 'Accepted', [203] = 'Non-Authoritative Information',
  [204] = 'No Content', [205] = 'Reset Content', [206] = 'Partial Content', [207] = 'Multi-Status',
  [208] = 'Already Reported', [226] = 'IM Used',
  [300] = 'Multiple Choices', [301] = 'Moved Permanently', [302] = 'Found', [303] = 'See Other',
  [304] = 'Not Modified', [305] = 'Use Proxy', [307] = 'Temporary Redirect', [308] = 'Permanent Redirect',
  [400] = 'Bad Request', [401] = 'Unauthorized', [402] = 'Payment Required', [403] = 'Forbidden',
  [404] = 'Not Found', [405] = 'Method Not Allowed', [406] = 'Not Acceptable',
  [407] = 'Proxy Authentication Required', [408] = 'Request Timeout', [409] = 'Conflict', [410] = 'Gone',
  [411] = 'Length Required', [412] = 'Precondition Failed', [413] = 'Payload Too Large',
  [414] = 'URI Too Long', [415] = 'Unsupported Media Type', [416] = 'Range Not Satisfiable',
  [417] = 'Expectation Failed', [418] = "I'm a Teapot", [421] = 'Misdirected Request',
  [422] = 'Unprocessable Entity', [423] = 'Locked', [424] = 'Failed Dependency', [425] = 'Too Early',
  [426] = 'Upgrade Required', [428] = 'Precondition Required', [429] = 'Too Many Requests',
  [431] = 'Request Header Fields Too Large', [451] = 'Unavailable For Legal Reasons',
  [500] = 'Internal Server Error', [501] = 'Not Implemented', [502] = 'Bad Gateway',
  [503] = 'Service Unavailable', [504] = 'Gateway Timeout', [505] = 'HTTP Version Not Supported',
  [506] = 'Variant Also Negotiates', [507] = 'Insufficient Storage', [508] = 'Loop Detected',
  [510] = 'Not Extended', [511] = 'Network Authentication Required',
}

-- The status line's "code reason" and the code, from a WSAPI status: a number (200), a
-- numeric string ("200") or a full status ("200 OK", "404 Nope"), as uWSGI accepts them.
local function parse_status(status)
  local text = status
  if type(status) == 'number' then text = format('%d', status) end
  if type(text) ~= 'string' then
    error('invalid WSAPI response status ' .. tostring(status) .. ' (expected a number like 200 or a string like "200 OK")', 0)
  end
  local code, rest = text:match('^(%d%d%d)(.*)$')
  code = tonumber(code)
  if not code or code < 100 then
    error("invalid WSAPI response status '" .. text .. "' (expected a number like 200 or a string like \"200 OK\")", 0)
  end
  if rest == '' then return code .. ' ' .. (REASON[code] or 'Unknown'), code end
  if not find(rest, '^ ') then
    error("invalid WSAPI response status '" .. text .. "' (expected a number like 200 or a string like \"200 OK\")", 0)
  end
  return text, code
end

local function check_header_text(s)
  if find(s, '[\r\n]') then error('CR or LF in the WSAPI response status or headers', 0) end
end

-- Validate status and headers, decide the framing, return the head (ending with CRLFCRLF).
-- known: the body's exact size when the server knows it (string and table bodies).
local function make_head(status, headers, known)
  local status_text, code = parse_status(status)
  check_header_text(status_text)
  if headers == nil then headers = {} end
  if type(headers) ~= 'table' then
    error('WSAPI response headers must be a table (got a ' .. type(headers) .. ')', 0)
  end
  local parts, n = { R_PROTO, ' ', status_text, '\r\n' }, 4
  local length, app_framed
  for name, value in pairs(headers) do
    if type(name) ~= 'string' then
      error('WSAPI response header names must be strings (got a ' .. type(name) .. ')', 0)
    end
    check_header_text(name)
    local lname = lower(name)
    local values = value
    if type(value) ~= 'table' then values = { value } end
    -- A table of strings: the header repeated, in order (uWSGI 2.0.5+).
    for _, v in ipairs(values) do
      local tv = type(v)
      if tv == 'number' then
        v = tostring(v)
      elseif tv ~= 'string' then
        error("WSAPI response header '" .. name .. "' has a " .. tv .. ' value (expected a string or a table of strings)', 0)
      end
      check_header_text(v)
      parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4] = name, ': ', v, '\r\n'
      n = n + 4
      if lname == 'content-length' then
        local digits = v:match('^%s*(%d+)%s*$')
        if not digits then error("invalid Content-Length '" .. v .. "'", 0) end
        length = tonumber(digits)
      elseif lname == 'transfer-encoding' then
        app_framed = true
      end
    end
  end
  local mode
  if code < 200 or code == 204 or code == 304 or R_IS_HEAD then
    mode = MODE_NONE -- no body (and for 1xx/204/304 no framing header either)
    if known and R_IS_HEAD and not length and not app_framed and code >= 200 and code ~= 204 and code ~= 304 then
      -- HEAD gets the Content-Length a GET would get.
      n = n + 1
      parts[n] = 'Content-Length: ' .. known .. '\r\n'
    end
  elseif length then
    mode = MODE_LENGTH
    R_REMAIN = length
  elseif app_framed then
    mode = MODE_RAW -- the app set Transfer-Encoding itself: its framing
  elseif known then
    n = n + 1
    parts[n] = 'Content-Length: ' .. known .. '\r\n'
    mode = MODE_LENGTH
    R_REMAIN = known
  elseif PERSISTENT then
    n = n + 1
    parts[n] = 'Transfer-Encoding: chunked\r\n'
    mode = MODE_CHUNKED
  else
    mode = MODE_RAW -- plain uwsgi (nginx): closing the connection ends the body
  end
  parts[n + 1] = '\r\n'
  R_MODE = mode
  return concat(parts)
end

-- The framed bytes of one body chunk (possibly cut to what Content-Length still allows).
local function frame(chunk)
  local mode = R_MODE
  if mode == MODE_CHUNKED then
    return format('%x\r\n', #chunk) .. chunk .. '\r\n'
  elseif mode == MODE_LENGTH then
    local remain = R_REMAIN
    if #chunk > remain then chunk = sub(chunk, 1, remain) end
    R_REMAIN = remain - #chunk
    return chunk
  elseif mode == MODE_RAW then
    return chunk
  end
  return ''
end

-- Send the head (once) with the first body bytes.
local function commit(head, first)
  R_SENT = true
  if first == nil or first == '' or R_MODE == MODE_NONE then
    send_data(head)
  elseif #first > COALESCE_LIMIT then
    send_data(head)
    if R_MODE == MODE_CHUNKED then
      send_data(format('%x\r\n', #first))
      send_data(first)
      send_data('\r\n')
    else
      send_data(frame(first))
    end
  else
    send_data(head .. frame(first))
  end
end

local function send_body(chunk)
  if R_MODE == MODE_NONE or chunk == '' then return end
  if R_MODE == MODE_CHUNKED and #chunk > COALESCE_LIMIT then
    send_data(format('%x\r\n', #chunk))
    send_data(chunk)
    send_data('\r\n')
    return
  end
  if R_MODE == MODE_LENGTH and R_REMAIN == 0 then return end
  send_data(frame(chunk))
end

-- End the response. True when the connection can carry another request.
local function finish_response()
  if R_MODE == MODE_CHUNKED then
    send_data('0\r\n\r\n')
  elseif R_MODE == MODE_LENGTH and R_REMAIN > 0 then
    log_line(format('response shorter than its Content-Length (%d bytes missing): closing the connection', R_REMAIN))
    return false
  end
  -- MODE_RAW on a persistent connection: the app framed the body itself (its own
  -- Transfer-Encoding); elsewhere the caller closes the connection after the response.
  return true
end

local function send_error_response(body)
  R_SENT = true
  local head = R_PROTO .. ' 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: ' .. #body .. '\r\n\r\n'
  send_data(R_IS_HEAD and head or head .. body)
end

-- A body chunk from the app: strings as they are, numbers as text (Lua's own coercion);
-- nil/false end the body; anything else is an error.
local function chunk_text(c)
  local t = type(c)
  if t == 'string' then return c end
  if t == 'number' then return tostring(c) end
  error('the WSAPI body iterator returned a ' .. t .. ' (expected strings, then nil at the end)', 0)
end

-- Send a body given as an iterator: a function (usually coroutine.wrap) called until it
-- returns nil, or a coroutine resumed until it yields nil or ends. Each chunk is sent as it
-- comes: never buffered.
local function send_iterated(head, body)
  local next_chunk
  if type(body) == 'thread' then
    next_chunk = function()
      if coroutine.status(body) == 'dead' then return nil end
      local ok, c = coroutine.resume(body)
      if not ok then error(traceback(body, tostring(c)), 0) end
      return c
    end
  else
    next_chunk = body
  end
  if R_MODE == MODE_NONE then
    -- HEAD, 1xx, 204, 304: no body bytes; the iterator is not run (it may never end).
    commit(head, nil)
    return
  end
  local c = next_chunk()
  while c ~= nil and c ~= false do
    c = chunk_text(c)
    if c ~= '' then
      if R_SENT then send_body(c) else commit(head, c) end
    end
    c = next_chunk()
  end
  if not R_SENT then commit(head, nil) end
end

-- Send the app's response. True if the connection can carry the next request.
local function send_response(status, headers, body)
  local tb = type(body)
  if tb == 'string' then
    commit(make_head(status, headers, #body), body)
  elseif body == nil then
    commit(make_head(status, headers, 0), nil)
  elseif tb == 'table' and getmetatable(body) == nil then
    -- An array of strings: the whole body, with its length.
    local total = 0
    for i = 1, #body do
      body[i] = chunk_text(body[i])
      total = total + #body[i]
    end
    local head = make_head(status, headers, total)
    if total <= COALESCE_LIMIT then
      commit(head, concat(body))
    else
      commit(head, nil)
      for i = 1, #body do send_body(body[i]) end
    end
  elseif tb == 'function' or tb == 'thread' or (tb == 'table' or tb == 'userdata') and getmetatable(body) and getmetatable(body).__call then
    send_iterated(make_head(status, headers, nil), body)
  else
    error('invalid WSAPI response body: a ' .. tb .. ' (expected an iterator function, a coroutine, a string or an array of strings)', 0)
  end
  return finish_response()
end

-- Requests ---------------------------------------------------------------------------------------

local function select_app(env)
  local id = env.UWSGI_APPID
  if id and APPS_BY_MOUNT[id] then return APPS_BY_MOUNT[id] end
  local sn = env.SCRIPT_NAME
  if sn and APPS_BY_MOUNT[sn] then return APPS_BY_MOUNT[sn] end
  return DEFAULT_APP
end

-- The frames of a traceback that belong to the app: the bridge's own frames, and everything
-- below the bridge's call of the app (its xpcall), say nothing to the reader. Returns "" when
-- no app frame is left (an error the bridge raised itself, e.g. a malformed response).
function app_traceback(text)
  local out, app_frames = {}, 0
  for line in text:gmatch('[^\n]+') do
    if find(line, "in function 'xpcall'", 1, true) or find(line, "in function 'pcall'", 1, true) then break end
    if not find(line, BRIDGE_FILE, 1, true) then
      out[#out + 1] = line
      if not find(line, '^%s*%[C%]') and not find(line, '^%s*%(%.%.%.tail calls%.%.%.%)') and line ~= 'stack traceback:' then
        app_frames = app_frames + 1
      end
    end
  end
  if app_frames == 0 then return '' end
  while find(out[#out], 'tail calls', 1, true) do out[#out] = nil end
  return '\n' .. concat(out, '\n')
end

-- A hint for calls of uWSGI API functions tsuwsgi has not built yet.
local function pending_hint(message)
  local name = message:match("field '([%w_]+)'") or message:match("method '([%w_]+)'")
  local api = package.loaded.uwsgi
  if name and api and api._PENDING and api._PENDING[name] and api[name] == nil then
    return format('%s (uwsgi.%s needs %s, which tsuwsgi has not implemented yet: see docs/lua.md)', message, name, api._PENDING[name])
  end
  return message
end

local function error_handler(err)
  if getmetatable(err) == Disconnected then return err end
  local text = type(err) == 'string' and err or tostring(err)
  -- Lua 5.4's coroutine.wrap prefixes an error from the body iterator with where the bridge
  -- called it: not the app's position, drop it.
  local prefix = BRIDGE_FILE .. ':'
  while sub(text, 1, #prefix) == prefix do text = text:gsub('^[^:]*:%d+: ', '', 1) end
  return pending_hint(text) .. app_traceback(traceback('', 2))
end

-- The app (or sending its response) failed. True if the connection is still usable.
local function app_failed(env, err)
  local where = (env.REQUEST_METHOD or '?') .. ' ' .. (env.REQUEST_URI or env.PATH_INFO or '')
  if getmetatable(err) == Disconnected then
    log_line(tostring(err) .. ', during ' .. where .. ' (' .. tostring(env.REMOTE_ADDR) .. ')')
    return false
  end
  local text = tostring(err):gsub('%s+$', '')
  log_line('[uwsgi-lua error] ' .. where .. ': ' .. text)
  if R_SENT then return false end -- truncated: closing the connection tells the core so (§3.3)
  local ok = pcall(send_error_response, CATCH_EXCEPTIONS and text .. '\n' or 'Internal Server Error')
  return ok
end

-- Parse a vars block into a new env table. Returns nil on a malformed block.
local function parse_vars(vars)
  local env = {}
  local pos, size = 1, #vars
  while pos <= size do
    local a, b = byte(vars, pos, pos + 1)
    if not b then return nil end
    local kend = pos + 1 + a + b * 256
    local key = sub(vars, pos + 2, kend)
    local c, d = byte(vars, kend + 1, kend + 2)
    if not d then return nil end
    pos = kend + 3 + c + d * 256
    if pos - 1 > size then return nil end
    local value = sub(vars, kend + 3, pos - 1)
    local old = env[key]
    -- nginx passes a repeated request header as repeated vars: joined with ", " (as the
    -- PSGI and Rack bridges do; HTTP allows folding them so).
    if old then env[key] = old .. ', ' .. value else env[key] = value end
  end
  return env
end

local EMPTY = ''

-- One request packet: build the env, run the app, send its response. True if the connection
-- can carry the next request.
local function handle_request(vars)
  local env = parse_vars(vars)
  if not env then
    log_line('invalid uwsgi packet (malformed vars block): closing the connection')
    return false
  end
  local length = env.CONTENT_LENGTH
  if length and length ~= '' then
    if not find(length, '^%d+$') then
      log_line("invalid CONTENT_LENGTH '" .. length .. "': closing the connection")
      return false
    end
    length = tonumber(length)
  else
    length = 0
  end
  -- WSAPI: these are always strings (uWSGI sets CONTENT_TYPE to "" when absent; pippo.lua
  -- concatenates SCRIPT_NAME).
  if not env.SCRIPT_NAME then env.SCRIPT_NAME = EMPTY end
  if not env.PATH_INFO then env.PATH_INFO = EMPTY end
  if not env.QUERY_STRING then env.QUERY_STRING = EMPTY end
  if not env.CONTENT_TYPE then env.CONTENT_TYPE = EMPTY end

  local input
  if length == 0 then
    input = memory_input(EMPTY)
  elseif length <= BUFFERED_BODY_LIMIT then
    local body = recv_exact(length)
    if not body then
      log_line(format('client disconnected while sending the request body, during %s %s',
        tostring(env.REQUEST_METHOD), tostring(env.REQUEST_URI or env.PATH_INFO)))
      return false
    end
    input = memory_input(body)
  else
    input = stream_input(length)
  end
  env.input = input
  env.error = ERRORS

  R_PROTO = env.SERVER_PROTOCOL or 'HTTP/1.0'
  if R_PROTO == '' then R_PROTO = 'HTTP/1.0' end
  R_IS_HEAD = env.REQUEST_METHOD == 'HEAD'
  R_SENT = false
  R_MODE = MODE_NONE
  R_REMAIN = 0

  local app = SINGLE_APP or select_app(env)
  local ok, status, headers, body = xpcall(app, error_handler, env)
  local keep
  if ok then
    ok, keep = xpcall(send_response, error_handler, status, headers, body)
    if not ok then keep = app_failed(env, keep) end
  else
    keep = app_failed(env, status)
  end
  REQUESTS = REQUESTS + 1
  -- The app left part of a streamed body unread: consume it, or the next packet would be
  -- read from the middle of this body.
  if input.streamed and input.left > 0 then
    local fine = input:finish()
    if not fine then keep = false end
  end
  -- --lua-gc-freq N: a full collection every N requests (0: Lua's incremental collector only).
  if GC_FREQ > 0 and REQUESTS % GC_FREQ == 0 then collectgarbage() end
  return keep
end

-- Connections ------------------------------------------------------------------------------------

local function u16(n)
  return char(n % 256, floor(n / 256) % 256)
end

local function answer_hello()
  local parts = {}
  for _, kv in ipairs({ { 'pid', tostring(CONFIG.pid) }, { 'worker_id', tostring(WORKER_ID) }, { 'core', '0' }, { 'bridge_api', tostring(BRIDGE_API) } }) do
    parts[#parts + 1] = u16(#kv[1]) .. kv[1] .. u16(#kv[2]) .. kv[2]
  end
  local vars = concat(parts)
  local ok = pcall(send_data, char(HELLO_MODIFIER1) .. u16(#vars) .. char(1) .. vars)
  return ok
end

local function serve_connection()
  PERSISTENT = false
  local m1, vars, m2 = read_packet()
  if not m1 then return end
  if m1 == HELLO_MODIFIER1 and m2 == 0 then
    if not answer_hello() then return end
    PERSISTENT = true
    m1, vars, m2 = read_packet()
  end
  while m1 do
    if m1 == HELLO_MODIFIER1 and m2 == 0 then
      -- A repeated hello: answer it again.
      if not answer_hello() then return end
    elseif not handle_request(vars) or not PERSISTENT then
      return
    end
    m1, vars, m2 = read_packet()
  end
end

local function accept_loop()
  LISTEN:settimeout(0) -- the pool socket is shared: another bridge may win the connection
  local set = { LISTEN, CONTROL }
  while not STOPPING do
    local readable = socket.select(set, nil, nil)
    if readable[CONTROL] then read_control(nil) end
    if readable[LISTEN] and not STOPPING then
      local client, err = LISTEN:accept()
      if client then
        client:settimeout(nil) -- reads block; the accept loop's select covers stops
        SOCK = client
        local ok, e = pcall(serve_connection)
        if not ok and not tostring(e):find('interrupted!', 1, true) then
          log_line('lua bridge: error while serving a connection: ' .. tostring(e))
        end
        SOCK = nil
        client:close()
      elseif err ~= 'timeout' then
        log_line('lua bridge: accept() failed: ' .. tostring(err))
        socket.sleep(0.1)
      end
    end
  end
  run_atexit()
  hard_exit(0)
end

-- Loading (§2) -----------------------------------------------------------------------------------

local function one_line(text)
  return (tostring(text):gsub('%s+', ' '):gsub(' $', ''))
end

-- Raise a load failure: { app, message, details }.
local function load_error(id, message, details)
  error({ app = id, message = message, details = details or message }, 0)
end

local function run_file(file, what)
  local chunk, err = loadfile(file)
  if not chunk then load_error(0, 'unable to load ' .. what .. ' ' .. file .. ': ' .. one_line(err), err) end
  local ok, res = xpcall(chunk, function(e) return pending_hint(tostring(e)) .. app_traceback(traceback('', 2)) end)
  if not ok then load_error(0, 'unable to run ' .. what .. ' ' .. file .. ': ' .. one_line(res:match('^[^\n]*')), res) end
  return res
end

local function load_apps()
  local specs = CONFIG.apps or {}
  if #specs == 0 then load_error(0, 'no app to load (the configuration lists none)') end
  for index, spec in ipairs(specs) do
    local id = tonumber(spec.id) or index - 1
    local load = spec.load or {}
    local target = tostring(load.target or '')
    if load.kind ~= 'wsapi' then
      load_error(id, "unknown app kind '" .. tostring(load.kind) .. "' (the lua plugin loads \"wsapi\")")
    end
    local chunk, err = loadfile(target)
    if not chunk then load_error(id, 'unable to load Lua app ' .. target .. ': ' .. one_line(err), err) end
    local ok, app = xpcall(chunk, function(e) return pending_hint(tostring(e)) .. app_traceback(traceback('', 2)) end)
    if not ok then
      load_error(id, 'unable to load Lua app ' .. target .. ': ' .. one_line(tostring(app):match('^[^\n]*')), app)
    end
    -- WSAPI: the file returns the app function, or a table whose `run` is the function.
    local fn = app
    if type(app) == 'table' and type(app.run) == 'function' then fn = app.run end
    if type(fn) ~= 'function' then
      local mt = (type(app) == 'table' or type(app) == 'userdata') and getmetatable(app)
      if not (mt and mt.__call) then
        load_error(id, 'unable to find the WSAPI entry point in ' .. target
          .. ': the file must return a function or a table with a run function (it returned '
          .. (app == nil and 'nil' or 'a ' .. type(app)) .. ')')
      end
    end
    local mountpoint = tostring(spec.mountpoint or '')
    if APPS_BY_MOUNT[mountpoint] then
      log_line("lua bridge: mountpoint '" .. mountpoint .. "' is already taken, app ignored")
    else
      APPS[#APPS + 1] = { id = id, mountpoint = mountpoint, fn = fn }
      APPS_BY_MOUNT[mountpoint] = fn
    end
  end
  DEFAULT_APP = APPS_BY_MOUNT[''] or APPS[1].fn
  SINGLE_APP = #APPS == 1 and DEFAULT_APP or nil
end

-- The pid, which Lua's standard library does not give: /proc/self is this process.
local function own_pid()
  local link = io.open('/proc/self/stat', 'r')
  if link then
    local stat = link:read('*l') or ''
    link:close()
    local pid = tonumber(stat:match('^(%d+)'))
    if pid then return pid end
  end
  return 0
end

local function runtime_info()
  if type(jit) == 'table' and jit.version then return 'LuaJIT', (jit.version:gsub('^LuaJIT ', '')) end
  return 'Lua', (_VERSION:gsub('^Lua ', ''))
end

local function main()
  -- print() from apps goes to the log as it happens (stdout is a file or pipe: block-buffered).
  io.stdout:setvbuf('line')

  local listen_fd = tonumber(os.getenv('TSUWSGI_LISTEN_FD') or '3') or 3
  local control_fd = tonumber(os.getenv('TSUWSGI_CONTROL_FD') or '4') or 4
  -- A missing fd would otherwise be taken for one we open ourselves.
  for _, p in ipairs({ { listen_fd, 'pool socket' }, { control_fd, 'control channel' } }) do
    -- (/proc/self/fd/N cannot be opened for a socket; its fdinfo can.)
    local f = io.open('/proc/self/fdinfo/' .. p[1], 'r')
    if f then f:close() end
    if not f then
      log_line(format('lua bridge: fd %d (the %s) is not open; this script is started by tsuwsgi (see docs/bridge-protocol.md)', p[1], p[2]))
      hard_exit(1)
    end
  end
  CONTROL = adopt(control_fd, 'unixstream{client}')
  CONTROL_SET[1] = CONTROL

  local okc, config = pcall(json.decode, os.getenv('TSUWSGI_BRIDGE_CONFIG') or '{}')
  if not okc or type(config) ~= 'table' then
    log_line('lua bridge: TSUWSGI_BRIDGE_CONFIG is not valid JSON: ' .. tostring(config))
    hard_exit(1)
  end
  CONFIG = config
  CONFIG.pid = own_pid()
  PLUGIN = CONFIG.plugin or {}
  WORKER_ID = tonumber(CONFIG.workerId) or 1
  CATCH_EXCEPTIONS = PLUGIN.catchExceptions == true
  GC_FREQ = tonumber(PLUGIN.gcFreq) or 0

  -- The uwsgi API: a global, as uWSGI's lua plugin registers it, and require-able.
  local api = dofile(HERE .. '/uwsgi.lua')
  api._setup(CONFIG, {
    send_event = send_event,
    log_line = log_line,
    requests = function() return REQUESTS end,
    postfork = POSTFORK,
    atexit = ATEXIT,
  })
  package.loaded.uwsgi = api
  _G.uwsgi = api

  local loaded, err = pcall(function()
    for _, file in ipairs(PLUGIN.load or {}) do run_file(file, '--lua-load file') end
    load_apps()
  end)
  if not loaded then
    if type(err) ~= 'table' then err = { app = 0, message = one_line(err), details = tostring(err) } end
    local details = err.details or err.message
    if details ~= err.message then log_line(details) end
    log_line(err.message)
    send_event({ event = 'load-failed', app = err.app or 0, message = err.message, details = details })
    hard_exit(UWSGI_FAILED_APP_CODE)
  end
  for _, fn in ipairs(POSTFORK) do
    local ok, e = xpcall(fn, traceback)
    if not ok then log_line('lua bridge: uwsgi.postfork function failed: ' .. tostring(e)) end
  end

  LISTEN = adopt(listen_fd)
  local okl, lerr = LISTEN:listen(tonumber(CONFIG.listenBacklog) or 100)
  if not okl then
    log_line('lua bridge: listen() on the pool socket failed: ' .. tostring(lerr))
    hard_exit(1)
  end
  local runtime, version = runtime_info()
  local apps = {}
  for i, a in ipairs(APPS) do apps[i] = { id = a.id, mountpoint = a.mountpoint } end
  send_event({ event = 'ready', pid = CONFIG.pid, runtime = runtime, runtimeVersion = version, bridgeApi = BRIDGE_API, threads = 1, loops = { 'simple' }, apps = apps })
  if PLUGIN.watchdog then install_watchdog() end

  -- The interpreter's own SIGINT handler (lua.c) turns a Ctrl-C in the terminal, which
  -- signals the whole process group, into an "interrupted!" error once: the core decides
  -- how the workers stop, so the loop carries on.
  while true do
    local ok, e = pcall(accept_loop)
    if ok then break end
    if not tostring(e):find('interrupted!', 1, true) then
      log_line('lua bridge: ' .. tostring(e))
      hard_exit(1)
    end
  end
end

main()
