-- plugins/redact.lua
-- Masks card numbers in JSON answers, all but their last four digits.
function on_response_body(body)
  local kind = gw.response.get_header("content-type") or ""
  if not kind:find("json", 1, true) then return nil end       -- others go out as they came
  local masked, n = body:gsub('("card_number"%s*:%s*")%d+(%d%d%d%d")', "%1************%2")
  if n > 0 then gw.response.set_header("x-redacted", n) end   -- the head has not gone yet
  return masked
end
