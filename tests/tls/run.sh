#!/usr/bin/env bash
# TLS without a proxy, with curl and openssl against certificates this test
# makes (a CA of its own, two server certificates for 127.0.0.1): HTTPS over
# HTTP/1.1 and HTTP/2; plain HTTP refused on the TLS port; a renewed
# certificate put in place and SIGHUP sent while a slow upload is under way:
# the upload completes, new connections get the new certificate; a broken
# file at the next SIGHUP keeps the previous certificate; a key that does not
# fit the certificate stops the start-up with a message; a non-loopback
# address with keys and no TLS logs a warning naming the risk.
#
#   bash tests/tls/run.sh      (VISAGE_BIN overrides the binary)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
source "$root/tests/lib/visage.sh"
ensure_bin || exit 2
command -v openssl >/dev/null || { echo "the TLS test needs openssl" >&2; exit 2; }
state=$(mktemp -d)
pid="" upload=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$upload" ] && kill "$upload" 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT
fail() { echo "tls: $*" >&2; [ -f "$state/server.log" ] && tail -5 "$state/server.log" >&2; exit 1; }
make_certs "$state" first renewed || fail "openssl cannot make the certificates"
cp "$state/first.pem" "$state/server.pem"; cp "$state/first.key" "$state/server.key"
port=$(free_port)
url="https://127.0.0.1:$port"
"$VISAGE_BIN" serve --addr "127.0.0.1:$port" --models-dir "$PWD/models" --db "$state/v.db" \
  --tls-cert "$state/server.pem" --tls-key "$state/server.key" >"$state/server.log" 2>&1 &
pid=$!
eventually 30 curl -sf --cacert "$state/ca.pem" "$url/readyz" || fail "no HTTPS answer"
tls() { curl -s --cacert "$state/ca.pem" "$@"; }
[ "$(tls -o /dev/null -w '%{http_code} %{http_version}' --http1.1 "$url/readyz")" = "200 1.1" ] || fail "HTTP/1.1 over TLS"
[ "$(tls -o /dev/null -w '%{http_code} %{http_version}' --http2 "$url/readyz")" = "200 2" ] || fail "HTTP/2 over TLS"
if curl -sf -m 5 "http://127.0.0.1:$port/readyz" >/dev/null; then fail "plain HTTP answered on the TLS port"; fi
tls -f -F image=@tests/data/obama.jpg "$url/v1/detect" | jq -e '.faces | length == 1' >/dev/null || fail "detect over TLS"
serial() {
  openssl s_client -connect "127.0.0.1:$port" -servername 127.0.0.1 </dev/null 2>/dev/null | openssl x509 -noout -serial
}
first=$(serial); renewed=$(openssl x509 -in "$state/renewed.pem" -noout -serial)
[ "$first" = "$(openssl x509 -in "$state/first.pem" -noout -serial)" ] || fail "serving $first, not the first certificate"

# A slow upload (about 4 s) spans the renewal and the SIGHUP.
tls -o "$state/upload.json" -w '%{http_code}' --limit-rate 70k -F image=@tests/data/obama.jpg "$url/v1/detect" \
  >"$state/upload.code" &
upload=$!
sleep 1
cp "$state/renewed.pem" "$state/server.pem"; cp "$state/renewed.key" "$state/server.key"
kill -HUP "$pid"
eventually 5 grep -q "TLS certificate and key reloaded" "$state/server.log" || fail "no reload logged"
[ "$(serial)" = "$renewed" ] || fail "new connections do not get the renewed certificate"
kill -0 "$upload" 2>/dev/null || fail "the upload ended before the reload: slow it down"
wait "$upload"; upload=""
[ "$(cat "$state/upload.code")" = 200 ] || fail "the upload under way was dropped by the reload ($(cat "$state/upload.code"))"
jq -e '.faces | length == 1' "$state/upload.json" >/dev/null || fail "the upload's answer is wrong"

echo "not a certificate" >"$state/server.pem"
kill -HUP "$pid"
eventually 5 grep -q "TLS reload failed" "$state/server.log" || fail "a broken certificate file was not reported"
[ "$(serial)" = "$renewed" ] || fail "a failed reload changed the certificate"
tls -f "$url/readyz" >/dev/null || fail "a failed reload stopped HTTPS"
kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=""

if "$VISAGE_BIN" serve --addr "127.0.0.1:$port" --models-dir "$PWD/models" --db "$state/v.db" \
  --tls-cert "$state/first.pem" --tls-key "$state/renewed.key" >"$state/mismatch.log" 2>&1; then
  fail "started with a key that does not fit the certificate"
fi
grep -q "does not fit" "$state/mismatch.log" || fail "the mismatch is not explained: $(tail -2 "$state/mismatch.log")"

"$VISAGE_BIN" keys create --scope admin --name t --db "$state/v.db" >/dev/null || fail "keys create"
port=$(free_port)
"$VISAGE_BIN" serve --addr "0.0.0.0:$port" --models-dir "$PWD/models" --db "$state/v.db" >"$state/plain.log" 2>&1 &
pid=$!
eventually 30 curl -s -o /dev/null "http://127.0.0.1:$port/readyz" || fail "the plain service did not start"
grep -q "plain HTTP on a network" "$state/plain.log" || fail "no warning for plain HTTP on a network address"
echo "tls: HTTP/1.1 and HTTP/2 over TLS, plain HTTP refused, renewal on SIGHUP kept a 4 s upload," \
  "broken reload kept the old certificate, mismatched key refused, plain-HTTP warning: all passed"
