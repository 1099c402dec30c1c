#!/bin/sh
# azd hook for the Event Grid subscriptions, which deliver to the deployed functions (ingest, job_events) and
# can be created only once those exist. AUTOPILOT_WIRE_EVENTS (the Bicep's wireEvents) is derived afresh from
# Azure at every provision, never kept from an earlier one: after `azd down` the functions are gone, and so is
# the wiring.
#
#   wire-events.sh preprovision   AUTOPILOT_WIRE_EVENTS=true if the functions exist now, else false
#   wire-events.sh postdeploy     once the functions exist and the last provision did not wire them,
#                                 AUTOPILOT_WIRE_EVENTS=true and provision again
#
# The functions are read with the Azure CLI (`az functionapp function list`); without it, or signed out,
# preprovision does not wire (the provision then always succeeds) and postdeploy trusts the deploy that
# just succeeded.
set -eu

stage="${1:-postdeploy}"
# A freshly deployed app lists its functions once the host has synced its triggers (a minute or so).
attempts="${AUTOPILOT_WIRE_EVENTS_ATTEMPTS:-20}"
pause="${AUTOPILOT_WIRE_EVENTS_PAUSE:-15}"

value() { azd env get-value "$1" 2>/dev/null || true; }

# Prints yes, no, or unknown (no Azure CLI, or not signed in).
functions_deployed() {
  command -v az >/dev/null 2>&1 || { echo unknown; return; }
  subscription="$(value AZURE_SUBSCRIPTION_ID)"
  az account show ${subscription:+--subscription "$subscription"} >/dev/null 2>&1 || { echo unknown; return; }
  app="$(value AZURE_FUNCTION_APP_NAME)"
  group="$(value AZURE_RESOURCE_GROUP)"
  if [ -z "$app" ] || [ -z "$group" ]; then echo no; return; fi
  # A missing app (after `azd down`) is an error here: no functions.
  names="$(az functionapp function list ${subscription:+--subscription "$subscription"} --resource-group "$group" \
    --name "$app" --query "[].name" --output tsv 2>/dev/null)" || { echo no; return; }
  for function in ingest job_events; do  # listed as "<app>/<function>"
    printf '%s\n' "$names" | grep -Eqx "([^/]*/)?$function" || { echo no; return; }
  done
  echo yes
}

case "$stage" in
  preprovision)
    # The provision the postdeploy hook starts has checked (or trusted) the functions already.
    found="$([ "${AUTOPILOT_WIRING:-}" = 1 ] && echo yes || functions_deployed)"
    if [ "$found" = yes ]; then
      azd env set AUTOPILOT_WIRE_EVENTS true
      echo "The functions are deployed: this provision creates the Event Grid subscriptions."
    else
      azd env set AUTOPILOT_WIRE_EVENTS false
      if [ "$found" = unknown ]; then
        echo "Cannot list the functions (no Azure CLI, or not signed in with az login): provisioning without" \
          "the Event Grid subscriptions; the postdeploy hook creates them."
      else
        echo "The functions are not deployed yet: provisioning without the Event Grid subscriptions; the" \
          "postdeploy hook creates them."
      fi
    fi
    ;;
  postdeploy)
    if [ "$(value AUTOPILOT_WIRE_EVENTS)" = true ]; then
      echo "Event Grid subscriptions created by this provision."
      exit 0
    fi
    tries=0
    while :; do
      found="$(functions_deployed)"
      [ "$found" = no ] || break
      tries=$((tries + 1))
      if [ "$tries" -ge "$attempts" ]; then
        echo "The functions ingest and job_events are not listed on the function app; not creating the" \
          "Event Grid subscriptions. Run \`azd deploy\`, then \`azd hooks run postdeploy\`." >&2
        exit 1
      fi
      sleep "$pause"
    done
    azd env set AUTOPILOT_WIRE_EVENTS true
    AUTOPILOT_WIRING=1 azd provision --no-prompt
    ;;
  *)
    echo "usage: $0 preprovision|postdeploy" >&2
    exit 2
    ;;
esac
