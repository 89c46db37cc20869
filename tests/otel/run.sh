#!/usr/bin/env bash
# OpenTelemetry export (a build with `--features otel`): a stand-in OTLP/HTTP
# collector records what visage sends; a request carrying a W3C traceparent
# must come back as a "request" span in that trace, with its request id.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
features=${VISAGE_FEATURES:-otel}
case "$features" in *otel*) ;; *) features="$features otel" ;; esac
source tests/lib/visage.sh
VISAGE_FEATURES=$features
unset VISAGE_BIN   # the binary must be built with the otel feature
ensure_bin
state=$(mktemp -d)
cport=$(free_port)
port=$(free_port)

python3 - "$cport" "$state/otlp.jsonl" <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class Collector(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(out, "ab") as f:
            f.write(self.path.encode() + b"\t" + body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Collector).serve_forever()
PY
collector=$!
trap 'kill "$collector" 2>/dev/null || true; rm -rf "$state"' EXIT
start_visage "$port" "$state/server.log" --db "$state/visage.db" \
  --otlp-endpoint "http://127.0.0.1:$cport/v1/traces" --otlp-json || exit 1
server=$SERVER_PID
trap 'kill "$server" "$collector" 2>/dev/null || true; rm -rf "$state"' EXIT

trace=0af7651916cd43dd8448eb211c80319c
parent=b7ad6b7169203331
curl -sf -H "traceparent: 00-$trace-$parent-01" -H "x-request-id: otel-test-1" \
  -F image=@tests/data/obama.jpg "http://127.0.0.1:$port/v1/detect" >/dev/null
# SIGTERM: the server drains, and the exporter flushes on exit.
kill -TERM "$server"
wait "$server"

python3 - "$state/otlp.jsonl" "$trace" "$parent" <<'PY'
import json, sys
path, trace, parent = sys.argv[1], sys.argv[2], sys.argv[3]
spans = []
for line in open(path, "rb"):
    url, body = line.split(b"\t", 1)
    assert url == b"/v1/traces", url
    for rs in json.loads(body)["resourceSpans"]:
        service = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
        assert service["service.name"] == {"stringValue": "visage"}, service
        for ss in rs["scopeSpans"]:
            spans += ss["spans"]
def attrs(span):
    return {a["key"]: list(a["value"].values())[0] for a in span.get("attributes", [])}
mine = [s for s in spans if s["name"] == "request" and attrs(s).get("request_id") == "otel-test-1"]
assert mine, f"no request span with the request id among {len(spans)} spans"
span = mine[0]
assert span["traceId"].lower() == trace, span["traceId"]
assert span["parentSpanId"].lower() == parent, span["parentSpanId"]
a = attrs(span)
assert a.get("route") == "/v1/detect" and a.get("method") == "POST", a
print(f"ok   otel/run.sh ({len(spans)} spans exported; the request continued trace {trace})")
PY
