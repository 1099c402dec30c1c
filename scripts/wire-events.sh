#!/bin/sh
# azd postdeploy hook: create the Event Grid subscriptions once the functions they deliver to exist.
set -eu
if [ "$(azd env get-value AUTOPILOT_WIRE_EVENTS 2>/dev/null || true)" = "true" ]; then
  echo "Event Grid subscriptions already wired (AUTOPILOT_WIRE_EVENTS=true)."
  exit 0
fi
azd env set AUTOPILOT_WIRE_EVENTS true
azd provision --no-prompt
