# azd postdeploy hook: create the Event Grid subscriptions once the functions they deliver to exist.
$ErrorActionPreference = 'Stop'
$wired = (azd env get-value AUTOPILOT_WIRE_EVENTS 2>$null)
if ($wired -eq 'true') { Write-Host 'Event Grid subscriptions already wired (AUTOPILOT_WIRE_EVENTS=true).'; exit 0 }
azd env set AUTOPILOT_WIRE_EVENTS true
azd provision --no-prompt
