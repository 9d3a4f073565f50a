#!/bin/bash
# antifraud-healthcheck PORT: exit 0 when the process listening on 127.0.0.1:PORT says
# SERVING on its plaintext health endpoint (GET /healthz beside /metrics, the gRPC port +
# 1000 by default: services/common/metrics.py). The image's and compose's health check.
#
# Bash only (its /dev/tcp), so a check every few seconds costs a fork, not an interpreter
# start and a gRPC channel: on a busy two-core host `antifraud health` took seconds of CPU.
set -u
port=${1:?usage: antifraud-healthcheck PORT}
[[ $port =~ ^[0-9]+$ ]] || { echo "antifraud-healthcheck: not a port: $port" >&2; exit 2; }
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
read -r -t 5 _ status _ <&3 || exit 1
[[ $status == 200 ]]
