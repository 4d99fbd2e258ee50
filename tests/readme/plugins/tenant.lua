-- plugins/tenant.lua
local regions = { acme = "eu-1", globex = "us-2" }   -- the top level runs once per worker

function on_request()
  local tenant = gw.request.get_header("x-tenant")
  local region = tenant and regions[tenant]
  if not region then
    return gw.response.exit(403, { message = "unknown tenant" })   -- a JSON body
  end
  gw.request.set_header("x-region", region)          -- to the upstream
  gw.ctx.region = region                             -- for this request's other hooks
end

function on_response()
  if gw.ctx.region then gw.response.set_header("x-served-from", gw.ctx.region) end
end

function on_log()
  local status = gw.response.get_status() or 0
  if status >= 500 then gw.log("tenant", gw.request.get_header("x-tenant"), "got", status) end
end
