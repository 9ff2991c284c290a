-- Benchmark app: WSAPI Hello World in the shape wsapi.response produces (a body iterator
-- made with coroutine.wrap, and a Content-Length, as most apps send).
local body = 'Hello World'
local headers = { ['Content-Type'] = 'text/html', ['Content-Length'] = tostring(#body) }
return function(wsapi_env)
  return 200, headers, coroutine.wrap(function()
    coroutine.yield(body)
  end)
end
