#!/usr/bin/env bash
# Run one query non-interactively and alert according to the exit-code contract (README "Exit codes").
# Usage: run-query.sh QUERY_FILE OUT_FILE
# Set ALERT to a command that takes a message on stdin (mail, a chat webhook client, logger ...).
set -u
query=$1
out=$2
alert=${ALERT:-"logger -t mpc-agent"}
agent=${AGENT:-/opt/mpc-agent/bin/mpc-agent}   # the installed sh launcher (README "Install")
events=$(mktemp)
trap 'rm -f "$events"' EXIT

"$agent" query run "$query" --out "$out" --json --timeout "${TIMEOUT:-900}" >"$events"
code=$?
last=$(tail -n 1 "$events")
case $code in
  0)   exit 0 ;;
  2)   echo "mpc-agent: configuration error, fix config/query: $last" | $alert ;;
  3)   echo "mpc-agent: a provider's policy rejected the query (no data was read): $last" | $alert ;;
  4)   echo "mpc-agent: ABORTED, a peer deviated from the protocol - investigate the accused peer: $last" | $alert ;;
  5)   echo "mpc-agent: timeout or unreachable peer (retry later): $last" | $alert ;;
  6)   echo "mpc-agent: bad local data: $last" | $alert ;;
  7)   echo "mpc-agent: another run is still writing $out; skipped" | $alert ;;
  130|143) echo "mpc-agent: interrupted" | $alert ;;
  *)   echo "mpc-agent: internal error (exit $code), rerun with --verbose and report: $last" | $alert ;;
esac
exit "$code"
