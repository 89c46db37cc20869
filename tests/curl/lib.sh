# Helpers for the curl tests, sourced by run.sh and the test scripts.

# expect_status CODE CURL_ARGS... : runs curl, fails unless the status is CODE;
# the body is left in $BODY_FILE for jq.
BODY_FILE=${BODY_FILE:-$(mktemp)}
expect_status() {
  local want=$1; shift
  local got
  got=$(curl -s -o "$BODY_FILE" -w '%{http_code}' "$@")
  if [ "$got" != "$want" ]; then
    echo "expected HTTP $want, got $got: $(head -c 300 "$BODY_FILE")" >&2
    return 1
  fi
}

# expect_error CODE ERROR_CODE CURL_ARGS...
expect_error() {
  local want=$1 code=$2; shift 2
  expect_status "$want" "$@"
  jq -e --arg c "$code" '.error.code == $c and (.error.message | length > 0)' "$BODY_FILE" >/dev/null || {
    echo "expected error code $code, got $(cat "$BODY_FILE")" >&2
    return 1
  }
}
