-- The gateway's routing, run inside nginx by the Lua module (written by mlctl; see gateway.py).
--
-- Routes live in the shared dict `mlctl_routes`, one JSON document per service:
--   {"weights": {"blue": 90, "green": 10},      -- percent of requests per colour
--    "http": {"blue": 40001, "green": 40002},   -- model servers' REST ports (loopback)
--    "grpc": {"blue": 40003, "green": 40004},   -- their gRPC ports
--    "mirror": {"colour": "green", "percent": 10} or absent}
-- mlctl writes them through the admin socket (PUT /routes/<service>). A shared dict is one
-- memory segment for every worker, so a write is in force for the very next request: no
-- reload, no new workers, client connections (keep-alive, HTTP/2) stay open across a switch.
-- `mlctl_inflight` counts requests in flight per service/colour, so a colour is stopped only
-- once nothing is being proxied to it.

local cjson = require "cjson.safe"
local balancer = require "ngx.balancer"

local routes = ngx.shared.mlctl_routes
local inflight = ngx.shared.mlctl_inflight
local COLOURS = { "blue", "green" }
local HOST = "127.0.0.1"

local M = {}
local cache = {} -- per worker: service -> {raw = json text, route = decoded}

local function load(service)
    local raw = routes:get(service)
    if not raw then
        return nil
    end
    local hit = cache[service]
    if hit and hit.raw == raw then -- Lua strings are interned: this compares pointers
        return hit.route
    end
    local route = cjson.decode(raw)
    cache[service] = { raw = raw, route = route }
    return route
end

local function pick(weights)
    local r = math.random() * 100
    local acc, last = 0, nil
    for _, colour in ipairs(COLOURS) do
        local w = weights[colour] or 0
        if w > 0 then
            acc = acc + w
            last = colour
            if r < acc then
                return colour
            end
        end
    end
    return last
end

local function refuse(proto, status, grpc_status, message)
    if proto == "grpc" then
        -- A gRPC "trailers-only" answer: one HEADERS frame that ends the stream, carrying the
        -- status (nginx sends a header-only response so for 204, as its gRPC docs do).
        ngx.header["content-type"] = "application/grpc"
        ngx.header["grpc-status"] = grpc_status
        ngx.header["grpc-message"] = message
        return ngx.exit(204)
    end
    ngx.status = status
    ngx.header["content-type"] = "application/json"
    ngx.say(cjson.encode({ error = message }))
    return ngx.exit(ngx.HTTP_OK)
end

local function count(ctx, colour)
    ctx.counted = ctx.service .. "/" .. colour
    inflight:incr(ctx.counted, 1, 0)
end

local function uncount(ctx)
    if ctx.counted then
        inflight:incr(ctx.counted, -1, 0)
        ctx.counted = nil
    end
end

local function request_id()
    -- One id per client request, passed to the serving colour and to a mirror alike, so a
    -- shadow's answer can be matched with production's. A client's own id is kept.
    local headers = ngx.req.get_headers()
    local rid = headers["x-request-id"]
    if type(rid) ~= "string" or rid == "" or #rid > 200 then
        rid = ngx.var.request_id
        ngx.req.set_header("X-Request-ID", rid)
    end
    return headers
end

-- rewrite phase of a client request. proto: "http" or "grpc"; pin: a colour or nil.
function M.route(proto, pin)
    local headers = request_id()
    local service
    if proto == "grpc" then
        -- The V2 gRPC method path names no model; the service comes from call metadata.
        service = headers["mlctl-service"]
        if type(service) ~= "string" or not ngx.re.find(service, [[^[a-z0-9][a-z0-9-]{0,62}$]], "jo") then
            return refuse(proto, 400, "3", "set the gRPC metadata mlctl-service: <service>")
        end
    else
        service = ngx.var.mlctl_service
    end
    local route = load(service)
    if not route then
        return refuse(proto, 404, "5", "no such service at this gateway: " .. service)
    end
    local colour = pin or pick(route.weights or {})
    local ports = route[proto] or {}
    local port = colour and ports[colour]
    if not port then
        local what = pin and (pin .. " is not deployed") or "the service receives no traffic yet"
        return refuse(proto, 503, "14", service .. ": " .. what)
    end
    local ctx = { service = service, colour = colour, port = port, proto = proto, route = route, pinned = pin }
    ngx.ctx.mlctl = ctx
    count(ctx, colour)
    if pin then
        ngx.req.set_uri(ngx.var.mlctl_rest)
    end
end

-- The other colour of the split, for one retry when the chosen colour refuses the connection
-- (its server just stopped): inference has no side effects, and it never follows an HTTP error.
local function fallback(ctx)
    local weights = ctx.route.weights or {}
    local ports = ctx.route[ctx.proto] or {}
    for _, colour in ipairs(COLOURS) do
        if colour ~= ctx.colour and (weights[colour] or 0) > 0 and ports[colour] then
            return colour, ports[colour]
        end
    end
    return nil
end

-- balancer phase (once per try).
function M.balance()
    local ctx = ngx.ctx.mlctl
    if not ctx then
        return ngx.exit(500)
    end
    local state = balancer.get_last_failure()
    if state then
        local colour, port = fallback(ctx)
        if not colour then
            return ngx.exit(502)
        end
        uncount(ctx)
        ctx.colour, ctx.port = colour, port
        count(ctx, colour)
    elseif not ctx.pinned and not ctx.mirror and fallback(ctx) then
        balancer.set_more_tries(1)
    end
    local ok, err = balancer.set_current_peer(HOST, ctx.port)
    if not ok then
        ngx.log(ngx.ERR, "mlctl: cannot set peer ", ctx.port, ": ", err)
        return ngx.exit(500)
    end
end

-- rewrite phase of the mirror subrequest made for every routed client request: forward a
-- copy to the mirror colour for `percent` % of them, otherwise end at once (no upstream call).
-- nginx discards the mirror's answer; the client never waits for it or sees it.
function M.mirror()
    local m = ngx.re.match(ngx.var.request_uri, [[^/v2/models/([a-z0-9][a-z0-9-]*)]], "jo")
    local service = m and m[1]
    local route = service and load(service)
    local mirror = route and route.mirror
    if not mirror or math.random() * 100 >= (mirror.percent or 0) then
        return ngx.exit(204)
    end
    local port = (route.http or {})[mirror.colour]
    if not port then
        return ngx.exit(204)
    end
    local ctx = { service = service, colour = mirror.colour, port = port, proto = "http", route = route, mirror = true }
    ngx.ctx.mlctl = ctx
    count(ctx, mirror.colour)
end

-- log phase: the request is over (answered, failed or abandoned by the client).
function M.done()
    local ctx = ngx.ctx.mlctl
    if ctx then
        uncount(ctx)
    end
end

-- admin socket ------------------------------------------------------------------------------

local function valid_route(doc)
    if type(doc) ~= "table" or type(doc.weights) ~= "table" then
        return false, "weights missing"
    end
    for key, value in pairs(doc) do
        if key == "weights" or key == "http" or key == "grpc" then
            for colour, n in pairs(value) do
                if (colour ~= "blue" and colour ~= "green") or type(n) ~= "number" then
                    return false, key .. " has a bad entry for " .. tostring(colour)
                end
            end
        elseif key == "mirror" then
            if value ~= cjson.null and (type(value) ~= "table" or type(value.percent) ~= "number") then
                return false, "mirror must be {colour, percent}"
            end
        else
            return false, "unknown field " .. tostring(key)
        end
    end
    return true
end

function M.admin()
    local m = ngx.re.match(ngx.var.uri, [[^/(routes|inflight)/([a-z0-9][a-z0-9-]{0,62})(?:/(blue|green))?$]], "jo")
    if not m then
        return ngx.exit(404)
    end
    local kind, service, colour = m[1], m[2], m[3]
    local method = ngx.req.get_method()
    ngx.header["content-type"] = "application/json"
    if kind == "inflight" then
        local n = 0
        for _, c in ipairs(colour and { colour } or COLOURS) do
            n = n + (inflight:get(service .. "/" .. c) or 0)
        end
        return ngx.say(cjson.encode({ inflight = n }))
    end
    if method == "GET" then
        local raw = routes:get(service)
        if not raw then
            return ngx.exit(404)
        end
        return ngx.say(raw)
    elseif method == "DELETE" then
        routes:delete(service)
        return ngx.say(cjson.encode({ generation = routes:incr("__generation", 1, 0) }))
    elseif method == "PUT" then
        ngx.req.read_body()
        local body = ngx.req.get_body_data()
        local doc = body and cjson.decode(body)
        local ok, why = valid_route(doc)
        if not ok then
            ngx.status = 400
            return ngx.say(cjson.encode({ error = why }))
        end
        local stored, err = routes:set(service, body)
        if not stored then
            ngx.status = 507
            return ngx.say(cjson.encode({ error = err }))
        end
        return ngx.say(cjson.encode({ generation = routes:incr("__generation", 1, 0) }))
    end
    return ngx.exit(405)
end

function M.init_worker()
    math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
end

return M
