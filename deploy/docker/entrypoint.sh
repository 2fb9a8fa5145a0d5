#!/bin/sh
# Runs the command it is given (`circles run <process>`, or any `circles ...` command) after one default:
# a worker's id is the container's host name unless CIRCLES_WORKER_ID says otherwise. Replicas started
# from one definition (compose --scale, a Deployment) then keep apart what is each one's own: Kafka
# client ids and the notifications worker's sent-journal file in the data directory.
set -e
if [ -z "${CIRCLES_WORKER_ID:-}" ]; then
    CIRCLES_WORKER_ID="$(hostname)"
    export CIRCLES_WORKER_ID
fi
exec "$@"
