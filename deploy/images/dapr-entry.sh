#!/bin/sh
# Entry point of the Dapr images: runs the image's program ($DAPR_PROGRAM: daprd, placement,
# scheduler or sentry) with the arguments given.
#
# DAPR_TRUST_ANCHORS_FILE: sentry's root certificate, which sentry writes at its first start
# (into a volume the others mount read-only). It is waited for (a minute at most), and daprd,
# which takes trust anchors only from the variable DAPR_TRUST_ANCHORS, gets its content there.
set -eu
if [ -n "${DAPR_TRUST_ANCHORS_FILE:-}" ]; then
    tries=0
    while [ ! -s "$DAPR_TRUST_ANCHORS_FILE" ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 600 ]; then
            echo "dapr-entry: no trust anchors at $DAPR_TRUST_ANCHORS_FILE after 60 s (is sentry up?)" >&2
            exit 1
        fi
        sleep 0.1
    done
    DAPR_TRUST_ANCHORS=$(cat "$DAPR_TRUST_ANCHORS_FILE")
    export DAPR_TRUST_ANCHORS
fi
# On Kubernetes the Dapr injector runs the sidecar image with the arguments "/daprd" and its
# flags (keeping the image's entrypoint): the program's path is dropped, the program here is ours.
if [ "${1:-}" = "/$DAPR_PROGRAM" ]; then
    shift
fi
exec "$DAPR_PROGRAM" "$@"
