-- wrk script: POST the image named by $IMG as a raw image/jpeg body.
local f = assert(io.open(os.getenv("IMG"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "image/jpeg"

-- Count non-2xx answers separately from transport errors.
local rejected = 0
function response(status, headers, body)
  if status >= 300 then rejected = rejected + 1 end
end
