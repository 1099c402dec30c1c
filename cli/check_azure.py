"""`autopilot check-azure [--json]`: the Azure pre-flight (shared/platforms/azureml/preflight.py).

Settings come as for the other commands (environment, then local.settings.json); the sign-in is
DefaultAzureCredential (`az login` on a laptop). Exit 0 when every check passes, 1 when one fails, 2 when the
settings do not name a workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from typing import Any

from shared.local_settings import load_local_settings
from shared.settings import Settings, SettingsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per check")


def make_platform(settings: Settings) -> Any:
    """None: the composition root builds the adapter as the app does (tests return one over the wire fake)."""
    return None


def run(args: argparse.Namespace) -> int:
    try:
        load_local_settings()
        # The check is of the Azure settings even where AUTOPILOT_PLATFORM is still local (before `azd up`).
        settings = Settings.from_env({**os.environ, "AUTOPILOT_PLATFORM": "azureml"})  # requires AZUREML_*
    except SettingsError as error:
        print(f"autopilot check-azure: {error}", file=sys.stderr)
        return EXIT_USAGE
    from shared.wiring import azure_preflight

    checks = azure_preflight(settings, make_platform(settings))
    for check in checks:
        if args.json:
            print(json.dumps(asdict(check)))
        else:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED
