#!/usr/bin/env bash
# Markdown job summary for the GitHub Action, from an iceprobe JSON report (check, gather or
# nat). Needs jq (present on GitHub's runners). Usage: action-summary.sh report.json
set -euo pipefail
r="$1"
cmd=$(jq -r '.command' "$r")
echo "## iceprobe $cmd: $(jq -r '.verdict.summary' "$r")"
echo
case "$cmd" in
check)
  echo "| server | address | transport | stun | allocate | send echo | channel echo | release | verdict |"
  echo "|---|---|---|---|---|---|---|---|---|"
  jq -r '
    def cell(s): if s.status == "ok" then "\(s.ms * 10 | round / 10) ms"
                 elif s.status == "failed" then "FAIL \(s.code // s.phase)"
                 else "-" end;
    .rows[] | "| \(.probed_url) | \(.address) | \(.transport) | \(cell(.binding)) | \(cell(.allocate)) | \(cell(.send_echo)) | \(cell(.channel_echo)) | \(cell(.release)) | \(.verdict) |"' "$r"
  if [ "$(jq '.fix | length' "$r")" -gt 0 ]; then
    echo; echo "### What to fix"; jq -r '.fix[] | "- \(.)"' "$r"
  fi
  ;;
gather)
  echo "| type | address | relay protocol | url | ms |"
  echo "|---|---|---|---|---|"
  jq -r '.candidates[] | "| \(.type) | \(.address):\(.port) | \(.relay_protocol // "") | \(.url // "") | \(.elapsed_ms) |"' "$r"
  jq -r '.errors[] | "- **\(.url)** \(.phase) \(.code // "") — \(.cause)"' "$r"
  ;;
nat)
  jq -r '.families[] | "- **\(.verdict.family)**: \(.verdict.forecast)"' "$r"
  ;;
esac
if jq -e '.expectations' "$r" >/dev/null 2>&1; then
  echo; echo "### Expectations"
  jq -r '.expectations[] | "- \(if .passed then "✅" else "❌" end) `\(.expression)` (observed: \(.observed))"' "$r"
fi
