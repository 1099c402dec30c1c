# azd hook for the Event Grid subscriptions (Windows); the same logic as wire-events.sh, which says why.
#   wire-events.ps1 preprovision   AUTOPILOT_WIRE_EVENTS=true if the functions exist now, else false
#   wire-events.ps1 postdeploy     once the functions exist and the last provision did not wire them,
#                                  AUTOPILOT_WIRE_EVENTS=true and provision again
param([string]$Stage = 'postdeploy')
$ErrorActionPreference = 'Stop'
$attempts = if ($env:AUTOPILOT_WIRE_EVENTS_ATTEMPTS) { [int]$env:AUTOPILOT_WIRE_EVENTS_ATTEMPTS } else { 20 }
$pause = if ($env:AUTOPILOT_WIRE_EVENTS_PAUSE) { [double]$env:AUTOPILOT_WIRE_EVENTS_PAUSE } else { 15 }

function Get-AzdValue([string]$Name) {
  $value = azd env get-value $Name 2>$null
  if ($LASTEXITCODE -ne 0) { return '' }
  return "$value".Trim()
}

# 'yes', 'no', or 'unknown' (no Azure CLI, or not signed in)
function Test-FunctionsDeployed {
  if (-not (Get-Command az -ErrorAction SilentlyContinue)) { return 'unknown' }
  $subscription = Get-AzdValue 'AZURE_SUBSCRIPTION_ID'
  $sub = if ($subscription) { @('--subscription', $subscription) } else { @() }
  az account show @sub *> $null
  if ($LASTEXITCODE -ne 0) { return 'unknown' }
  $app = Get-AzdValue 'AZURE_FUNCTION_APP_NAME'
  $group = Get-AzdValue 'AZURE_RESOURCE_GROUP'
  if (-not $app -or -not $group) { return 'no' }
  $names = az functionapp function list @sub --resource-group $group --name $app --query '[].name' --output tsv 2>$null
  if ($LASTEXITCODE -ne 0) { return 'no' }  # a missing app (after azd down): no functions
  $short = @($names | ForEach-Object { ("$_".Trim() -split '/')[-1] })
  foreach ($function in 'ingest', 'job_events') { if ($short -notcontains $function) { return 'no' } }
  return 'yes'
}

switch ($Stage) {
  'preprovision' {
    $found = if ($env:AUTOPILOT_WIRING -eq '1') { 'yes' } else { Test-FunctionsDeployed }
    if ($found -eq 'yes') {
      azd env set AUTOPILOT_WIRE_EVENTS true
      Write-Host 'The functions are deployed: this provision creates the Event Grid subscriptions.'
    } else {
      azd env set AUTOPILOT_WIRE_EVENTS false
      Write-Host "Provisioning without the Event Grid subscriptions (functions: $found); the postdeploy hook creates them."
    }
  }
  'postdeploy' {
    if ((Get-AzdValue 'AUTOPILOT_WIRE_EVENTS') -eq 'true') { Write-Host 'Event Grid subscriptions created by this provision.'; exit 0 }
    $tries = 0
    while ((Test-FunctionsDeployed) -eq 'no') {
      $tries++
      if ($tries -ge $attempts) {
        Write-Error 'The functions ingest and job_events are not listed on the function app; not creating the Event Grid subscriptions. Run `azd deploy`, then `azd hooks run postdeploy`.'
        exit 1
      }
      Start-Sleep -Seconds $pause
    }
    azd env set AUTOPILOT_WIRE_EVENTS true
    $env:AUTOPILOT_WIRING = '1'
    azd provision --no-prompt
    exit $LASTEXITCODE
  }
  default { Write-Error "usage: wire-events.ps1 preprovision|postdeploy"; exit 2 }
}
