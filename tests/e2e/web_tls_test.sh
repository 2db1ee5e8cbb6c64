#!/usr/bin/env bash
# Ensures the web calendar over HTTPS works as a lab would use it (issue 17 item 3): vrmd serves
# --http with a self-signed certificate made here by openssl; headless chromium, trusting exactly
# that certificate's key (--ignore-certificate-errors-spki-list), books through the form over
# https://, while a chromium that does not trust it gets no page; every answer carries HSTS;
# plain http:// on the port is redirected to https://; TLS 1.1 is refused; a renewed certificate
# is served after SIGHUP (systemctl reload) and a broken one leaves the renewed one in service; a
# certificate that cannot be read stops vrmd at the start, naming the file.
# Exits 77 (ctest: skipped) when chromium or openssl is not installed.
PORT=${PORT:-17470}
HTTP_PORT=${HTTP_PORT:-$((PORT + 2))}
SCALE=${SCALE:-60}  # slow enough that a reservation 3 h ahead stays admitted during the test
source "$(dirname "$0")/lib.sh"

chromium_bin=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $chromium_bin ]] || ! command -v openssl >/dev/null; then
  echo "chromium or openssl is not installed (scripts/install-deps.sh installs them): skipped"
  exit 77
fi
web=https://127.0.0.1:$HTTP_PORT

# make_cert NAME: a self-signed certificate for 127.0.0.1 and localhost, $work/NAME.{crt,key}.
make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=vrm e2e $1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$work/$1.key" -out "$work/$1.crt" 2>/dev/null
}
# spki NAME: the base64 SHA-256 of the certificate's public key, as chromium's trust flag wants.
spki() {
  openssl x509 -in "$work/$1.crt" -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64
}

make_cert web
cp "$work/web.crt" "$work/served.crt"
cp "$work/web.key" "$work/served.key"
expect_exit 2 "vrmd refuses a certificate it cannot read, and says which" -- \
  "$build/vrm/vrmd" --cluster "$CLUSTER" --store "$work/refused.db" --insecure \
  --clients "tcp://127.0.0.1:$PORT" --agents "tcp://127.0.0.1:$((PORT + 1))" --events off \
  --http "127.0.0.1:$HTTP_PORT" --http-tls-cert "$work/absent.crt" --http-tls-key "$work/web.key"
expect_output "absent.crt" "naming the file"
expect_exit 2 "and a certificate without its key" -- \
  "$build/vrm/vrmd" --cluster "$CLUSTER" --store "$work/refused.db" --insecure \
  --http "127.0.0.1:$HTTP_PORT" --http-tls-cert "$work/web.crt"
expect_output "give both or neither" "saying both are needed"

VRMD_EXTRA="--http-tls-cert $work/served.crt --http-tls-key $work/served.key"
start_cluster

# 1. HTTPS with the certificate, HSTS on the answers.
expect_exit 0 "the calendar is served over HTTPS to a client that trusts the certificate" -- \
  curl -fsS --cacert "$work/web.crt" -D - "$web/"
expect_output "reservation calendar" "it is the calendar"
expect_output "^Strict-Transport-Security: max-age=31536000" "with HSTS"
expect_exit 60 "a client that trusts nothing refuses it (curl: peer certificate not trusted)" -- \
  curl -sS "$web/api/now"

# 2. Plain HTTP on the port: sent to https://, nothing served in clear text.
expect_exit 0 "plain http:// is redirected" -- \
  curl -sS -o /dev/null -w '%{http_code} %{redirect_url}\n' "http://127.0.0.1:$HTTP_PORT/api/now"
expect_output "^308 https://127.0.0.1:$HTTP_PORT/api/now$" "308 to the same target over https://"
expect_exit 0 "following it lands on the API" -- \
  curl -fsSL --cacert "$work/web.crt" "http://127.0.0.1:$HTTP_PORT/api/now"
expect_output '"now_ns":[0-9]+' "vrmd's clock"

# 3. Old protocol versions are refused (curl's --tls-max caps what it offers).
expect_exit 35 "TLS 1.1 is refused (curl: handshake failed)" -- \
  curl -sS --cacert "$work/web.crt" --tlsv1.0 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0' "$web/"
expect_output "alert protocol version" "by vrmd (its alert), not by curl"

# 4. A real browser books through the form over HTTPS, trusting exactly this certificate.
book="$web/?book=1&kind=hosts&count=1&start=%2B3h&duration=1h&template=small&objective=makespan"
book+="&label=web-tls-e2e#token=$WEB_TOKEN"
expect_exit 0 "chromium books through the form over https://" -- \
  browser book --ignore-certificate-errors-spki-list="$(spki web)" --dump-dom "$book"
expect_output 'data-state="admitted"' "the page shows the admission"
expect_exit 0 "the API lists the booking" -- \
  curl -fsS --cacert "$work/web.crt" "$web/api/reservations?owner=web"
expect_output '"label":"web-tls-e2e"' "with the form's label"
expect_output '"start_ns":[0-9]+,"state":"admitted"' "admitted"
expect_exit 0 "chromium without the trust flag gets no calendar" -- \
  browser untrusted --dump-dom "$web/"
if grep -q "reservation calendar" "$work/out"; then
  failures=$((failures + 1))
  echo "FAIL: an untrusted certificate still showed the calendar" >&2
else
  checks=$((checks + 1))
  echo "ok: an untrusted certificate shows no calendar"
fi

# 5. Renewal: new files, SIGHUP; a botched renewal keeps the renewed certificate.
make_cert renewed
cp "$work/renewed.crt" "$work/served.crt"
cp "$work/renewed.key" "$work/served.key"
kill -HUP "$vrmd_pid"
renewed=0
for _ in $(seq 1 100); do
  if curl -fsS --cacert "$work/renewed.crt" -o /dev/null "$web/api/now" 2>/dev/null; then
    renewed=1
    break
  fi
  sleep 0.1
done
checks=$((checks + 1))
if ((renewed)); then
  echo "ok: after SIGHUP the renewed certificate is served"
else
  failures=$((failures + 1))
  echo "FAIL: the renewed certificate is not served after SIGHUP" >&2
fi
expect_exit 0 "vrmd logged the reload" -- grep -F "reloaded the TLS certificate" "$work/vrmd.log"
echo "not a certificate" >"$work/served.crt"
kill -HUP "$vrmd_pid"
for _ in $(seq 1 100); do
  grep -qF "kept the previous TLS certificate" "$work/vrmd.log" && break
  sleep 0.1
done
expect_exit 0 "a broken certificate file is refused at the reload" -- \
  grep -F "kept the previous TLS certificate" "$work/vrmd.log"
expect_exit 0 "and the renewed certificate stays in service" -- \
  curl -fsS --cacert "$work/renewed.crt" "$web/api/now"
expect_exit 0 "vrmd is still running" -- kill -0 "$vrmd_pid"

finish
