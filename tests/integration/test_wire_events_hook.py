"""The azd hook that wires the Event Grid subscriptions (scripts/wire-events.sh), run with stand-ins for
`azd` and `az` on PATH: `azd` keeps its environment in a file, runs the hooks azure.yaml declares before a
provision, and fails a provision that wires functions which are not deployed (the Bicep's `listKeys` of the
blob extension's key and the subscription to job_events fail so on Azure); `az` lists the deployed functions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "scripts" / "wire-events.sh"

AZD = r"""#!/bin/sh
# azd stand-in: env in $WORLD/env (KEY=VALUE lines), provisions logged to $WORLD/provisions.
set -eu
env_file="$WORLD/env"; touch "$env_file"
case "$1 $2" in
  "env get-value")
    line="$(grep "^$3=" "$env_file" || true)"
    [ -n "$line" ] || { echo "ERROR: key '$3' not found in the environment values" >&2; exit 1; }
    printf '%s\n' "${line#*=}" ;;
  "env set")
    grep -v "^$3=" "$env_file" > "$env_file.new" || true
    printf '%s=%s\n' "$3" "$4" >> "$env_file.new"; mv "$env_file.new" "$env_file" ;;
  "provision --no-prompt")
    if grep -q '^  preprovision:' "$REPO/azure.yaml"; then sh "$REPO/scripts/wire-events.sh" preprovision; fi
    wire="$(grep '^AUTOPILOT_WIRE_EVENTS=' "$env_file" | cut -d= -f2)"; wire="${wire:-false}"
    if [ "$wire" = true ] && [ "$(cat "$WORLD/functions")" != deployed ]; then
      echo "provision wire=true FAILED" >> "$WORLD/provisions"
      echo "ERROR: ResourceNotFound: host/default systemKeys.blobs_extension" >&2; exit 1
    fi
    echo "provision wire=$wire" >> "$WORLD/provisions"
    # The outputs azd keeps in the environment (they outlive `azd down`).
    for kv in AZURE_FUNCTION_APP_NAME=func-abc AZURE_RESOURCE_GROUP=rg-test AZURE_SUBSCRIPTION_ID=sub-1; do
      grep -q "^${kv%%=*}=" "$env_file" || echo "$kv" >> "$env_file"
    done
    [ "$(cat "$WORLD/app")" = present ] || echo present > "$WORLD/app" ;;
  *) echo "azd stand-in: unexpected: $*" >&2; exit 9 ;;
esac
"""

AZ = r"""#!/bin/sh
# az stand-in: signed in unless $WORLD/signed_out exists; lists functions as Azure does ("<app>/<name>").
set -eu
echo "$*" >> "$WORLD/az_calls"
[ ! -e "$WORLD/signed_out" ] || { echo "Please run 'az login' to setup account." >&2; exit 1; }
case "$1 $2" in
  "account show") echo '{"id": "sub-1"}' ;;
  "functionapp function")
    if [ "$(cat "$WORLD/app")" != present ]; then
      echo "(ResourceNotFound) The Resource 'Microsoft.Web/sites/func-abc' was not found." >&2; exit 3
    fi
    if [ -s "$WORLD/late" ]; then  # the host has not synced its triggers yet
      n="$(cat "$WORLD/late")"; echo $((n - 1)) > "$WORLD/late"; [ "$n" -gt 1 ] || : > "$WORLD/late"; exit 0
    fi
    if [ "$(cat "$WORLD/functions")" = deployed ]; then
      printf 'func-abc/ingest\nfunc-abc/job_events\nfunc-abc/steps\n'
    fi ;;
  *) echo "az stand-in: unexpected: $*" >&2; exit 9 ;;
esac
"""


class Azd:
    """A temp world: an azd environment, a subscription with (or without) the app, and its functions."""

    def __init__(self, tmp: Path, *, with_az: bool = True) -> None:
        self.world = tmp / "world"
        self.world.mkdir()
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        stubs = {"azd": AZD, **({"az": AZ} if with_az else {})}
        for name, text in stubs.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        # Only the stand-ins and the basic tools: no real az or azd can be reached.
        tools = tmp / "tools"
        tools.mkdir()
        for tool in ("sh", "grep", "cat", "cut", "mv", "touch", "sleep", "printf", "echo"):
            found = shutil.which(tool)
            if found:
                (tools / tool).symlink_to(found)
        self.env = {"PATH": f"{bin_dir}:{tools}", "WORLD": str(self.world), "REPO": str(ROOT),
                    "AUTOPILOT_WIRE_EVENTS_PAUSE": "0", "AUTOPILOT_WIRE_EVENTS_ATTEMPTS": "4",
                    "HOME": str(tmp)}
        self.set_world(app="absent", functions="none")

    def set_world(self, **state: str) -> None:
        for key, value in state.items():
            (self.world / key).write_text(value + "\n")

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=60,
                              cwd=ROOT, check=False)

    def up(self) -> tuple[int, str]:
        """`azd up`: provision (its preprovision hook first), deploy, then the postdeploy hook."""
        provision = self.run("azd", "provision", "--no-prompt")
        if provision.returncode:
            return provision.returncode, provision.stderr
        self.set_world(app="present", functions="deployed")
        hook = self.run("sh", str(HOOK), "postdeploy")
        return hook.returncode, hook.stdout + hook.stderr

    def down(self) -> None:
        """`azd down`: everything in Azure goes; the azd environment (with its outputs and flags) stays."""
        self.set_world(app="absent", functions="none")

    def provisions(self) -> list[str]:
        path = self.world / "provisions"
        return path.read_text().splitlines() if path.exists() else []

    def value(self, key: str) -> str | None:
        for line in (self.world / "env").read_text().splitlines():
            if line.startswith(key + "="):
                return line.split("=", 1)[1]
        return None


@pytest.fixture
def azd(tmp_path: Path) -> Azd:
    return Azd(tmp_path)


def test_the_first_up_provisions_then_wires_once_the_functions_exist(azd: Azd) -> None:
    assert azd.up()[0] == 0
    assert azd.provisions() == ["provision wire=false", "provision wire=true"]
    assert azd.value("AUTOPILOT_WIRE_EVENTS") == "true"


def test_a_later_up_wires_in_one_provision(azd: Azd) -> None:
    azd.up()
    assert azd.up()[0] == 0
    assert azd.provisions()[2:] == ["provision wire=true"]


def test_up_after_down_does_not_wire_functions_that_are_gone(azd: Azd) -> None:
    azd.up()
    azd.down()
    assert azd.value("AUTOPILOT_WIRE_EVENTS") == "true"  # what the environment still says
    status, output = azd.up()
    assert status == 0, output
    assert azd.provisions()[2:] == ["provision wire=false", "provision wire=true"]


def test_without_the_azure_cli_provision_does_not_wire_and_postdeploy_trusts_the_deploy(
        tmp_path: Path) -> None:
    azd = Azd(tmp_path, with_az=False)
    azd.up()
    azd.down()
    status, output = azd.up()
    assert status == 0, output
    assert azd.provisions() == ["provision wire=false", "provision wire=true"] * 2


def test_signed_out_of_az_counts_as_unknown_not_as_deployed(azd: Azd) -> None:
    azd.up()
    azd.down()
    azd.set_world(signed_out="yes")
    status, output = azd.up()
    assert status == 0, output
    assert azd.provisions()[2:] == ["provision wire=false", "provision wire=true"]


def test_postdeploy_waits_for_the_host_to_list_the_functions(azd: Azd) -> None:
    azd.run("azd", "provision", "--no-prompt")
    azd.set_world(app="present", functions="deployed", late="2")
    hook = azd.run("sh", str(HOOK), "postdeploy")
    assert hook.returncode == 0, hook.stderr
    lists = [c for c in (azd.world / "az_calls").read_text().splitlines() if c.startswith("functionapp")]
    assert len(lists) >= 3 and azd.provisions() == ["provision wire=false", "provision wire=true"]


def test_postdeploy_gives_up_clearly_when_the_functions_never_appear(azd: Azd) -> None:
    azd.run("azd", "provision", "--no-prompt")
    azd.set_world(app="present", functions="none")
    hook = azd.run("sh", str(HOOK), "postdeploy")
    assert hook.returncode == 1 and "azd hooks run postdeploy" in hook.stderr
    assert azd.provisions() == ["provision wire=false"]


def test_azure_yaml_runs_the_hook_before_every_provision_and_after_deploy() -> None:
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert "./scripts/wire-events.sh preprovision" in azure_yaml
    assert "./scripts/wire-events.sh postdeploy" in azure_yaml
    assert "./scripts/wire-events.ps1 preprovision" in azure_yaml
    assert os.access(HOOK, os.X_OK)
