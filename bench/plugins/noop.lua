-- The cheapest useful plugin: read a header, set one on the upstream request.
function on_request()
  local ua = gw.request.get_header("user-agent")
  gw.request.set_header("x-plugin", ua and "seen" or "none")
end
