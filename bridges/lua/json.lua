-- A minimal JSON codec for tsuwsgi's Lua bridge (bridges/lua/bridge.lua).
--
-- Lua has no JSON in its standard library, and the bridge must run on a bare interpreter
-- (lua5.1/LuaJIT to lua5.4) with nothing installed but LuaSocket. It only needs to read
-- TSUWSGI_BRIDGE_CONFIG and the core's control commands, and to write a few events, so this
-- covers exactly RFC 8259: objects, arrays, strings (with \uXXXX and surrogate pairs, decoded
-- to UTF-8), numbers, true, false and null (decoded as json.null, a unique sentinel, inside
-- arrays so they keep their length; dropped from objects, as a missing key means the same).
--
-- Loaded with dofile() by the bridge, never through require(), so an app's own `json`
-- module is not shadowed.

local byte, sub, char, find, format = string.byte, string.sub, string.char, string.find, string.format
local concat, floor = table.concat, math.floor

local json = {}
json.null = setmetatable({}, { __tostring = function() return 'null' end })

-- Decoding ------------------------------------------------------------------------------

local ESCAPES = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t' }

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40, 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local decode_value

local function fail(s, i, what)
  error(format('invalid JSON at byte %d: %s', i, what), 0)
end

local function skip_ws(s, i)
  local _, e = find(s, '^[ \t\r\n]*', i)
  return e + 1
end

local function decode_string(s, i)
  -- i is just after the opening quote.
  local parts, n = {}, 0
  while true do
    local j = find(s, '["\\]', i)
    if not j then fail(s, i, 'unterminated string') end
    if j > i then n = n + 1; parts[n] = sub(s, i, j - 1) end
    if byte(s, j) == 34 then -- "
      return concat(parts), j + 1
    end
    local e = sub(s, j + 1, j + 1)
    if e == 'u' then
      local hex = sub(s, j + 2, j + 5)
      if not find(hex, '^%x%x%x%x$') then fail(s, j, 'bad \\u escape') end
      local cp = tonumber(hex, 16)
      i = j + 6
      if cp >= 0xD800 and cp <= 0xDBFF and sub(s, i, i + 1) == '\\u' then
        local lo = tonumber(sub(s, i + 2, i + 5), 16)
        if lo and lo >= 0xDC00 and lo <= 0xDFFF then
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
          i = i + 6
        end
      end
      n = n + 1; parts[n] = utf8_char(cp)
    else
      local r = ESCAPES[e]
      if not r then fail(s, j, 'bad escape') end
      n = n + 1; parts[n] = r
      i = j + 2
    end
  end
end

function decode_value(s, i)
  i = skip_ws(s, i)
  local c = byte(s, i)
  if c == 123 then -- {
    local obj = {}
    i = skip_ws(s, i + 1)
    if byte(s, i) == 125 then return obj, i + 1 end
    while true do
      if byte(s, i) ~= 34 then fail(s, i, 'expected a key') end
      local key
      key, i = decode_string(s, i + 1)
      i = skip_ws(s, i)
      if byte(s, i) ~= 58 then fail(s, i, "expected ':'") end
      local v
      v, i = decode_value(s, i + 1)
      if v ~= json.null then obj[key] = v end
      i = skip_ws(s, i)
      local d = byte(s, i)
      if d == 125 then return obj, i + 1 end
      if d ~= 44 then fail(s, i, "expected ',' or '}'") end
      i = skip_ws(s, i + 1)
    end
  elseif c == 91 then -- [
    local arr, n = {}, 0
    i = skip_ws(s, i + 1)
    if byte(s, i) == 93 then return arr, i + 1 end
    while true do
      local v
      v, i = decode_value(s, i)
      n = n + 1; arr[n] = v
      i = skip_ws(s, i)
      local d = byte(s, i)
      if d == 93 then return arr, i + 1 end
      if d ~= 44 then fail(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == 34 then
    return decode_string(s, i + 1)
  elseif c == 116 and sub(s, i, i + 3) == 'true' then
    return true, i + 4
  elseif c == 102 and sub(s, i, i + 4) == 'false' then
    return false, i + 5
  elseif c == 110 and sub(s, i, i + 3) == 'null' then
    return json.null, i + 4
  else
    local _, e = find(s, '^-?%d+%.?%d*[eE]?[-+]?%d*', i)
    if not e then fail(s, i, 'unexpected character') end
    local num = tonumber(sub(s, i, e))
    if not num then fail(s, i, 'bad number') end
    return num, e + 1
  end
end

--- Decode one JSON text. Raises an error (a string) when it is not valid JSON.
function json.decode(s)
  local v, i = decode_value(s, 1)
  i = skip_ws(s, i)
  if i <= #s then fail(s, i, 'trailing characters') end
  return v
end

-- Encoding ------------------------------------------------------------------------------

local function escape_char(c)
  local r = ({ ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' })[c]
  return r or format('\\u%04x', byte(c))
end

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end

local encode

local function is_array(t)
  local n = #t
  if n == 0 then return next(t) == nil end
  for k in pairs(t) do
    if type(k) ~= 'number' or k < 1 or k > n or floor(k) ~= k then return false end
  end
  return true
end

function encode(v)
  local t = type(v)
  if v == nil or v == json.null then return 'null' end
  if t == 'boolean' then return v and 'true' or 'false' end
  if t == 'number' then
    if v ~= v or v == math.huge or v == -math.huge then return 'null' end
    if floor(v) == v and v > -1e15 and v < 1e15 then return format('%d', v) end
    return format('%.17g', v)
  end
  if t == 'string' then return encode_string(v) end
  if t == 'table' then
    local out = {}
    if is_array(v) then
      for i = 1, #v do out[i] = encode(v[i]) end
      return '[' .. concat(out, ',') .. ']'
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys) -- stable output: easier to read in logs and tests
    for i, k in ipairs(keys) do
      local val = v[k]
      if val == nil then val = v[tonumber(k)] end
      out[i] = encode_string(k) .. ':' .. encode(val)
    end
    return '{' .. concat(out, ',') .. '}'
  end
  error('cannot encode a ' .. t .. ' as JSON', 0)
end

--- Encode a Lua value (tables with keys 1..n are arrays, other tables objects).
json.encode = encode

return json
