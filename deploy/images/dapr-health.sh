#!/bin/bash
# Health check of the Dapr images: succeeds when http://127.0.0.1:PORT/PATH answers 2xx within
# 3 s (bash's /dev/tcp: no HTTP client in the image). Defaults: daprd's API (3500, /v1.0/healthz),
# or the health server of placement, scheduler and sentry (8080, /healthz).
#   dapr-health [PORT [PATH]]
set -u
if [ "${DAPR_PROGRAM:-}" = daprd ]; then
    port=${1:-3500} path=${2:-/v1.0/healthz}
else
    port=${1:-8080} path=${2:-/healthz}
fi
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
read -r -t 3 _ status _ <&3 || exit 1
[[ $status == 2?? ]]
