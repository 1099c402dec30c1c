"""`autopilot key [PROJECT]`: the front door's key, printed for a client's `api_key` (the only place it is).

    autopilot key [PROJECT]
        The key to send as `Authorization: Bearer KEY` to the front door (`openai.OpenAI(base_url=
        ".../api/v1", api_key=KEY)`). PROJECT (default: this install's one project) must be a model the front
        door serves; today that is ENDPOINT_NAME.
"""

from __future__ import annotations

import argparse
import os
import sys

from shared.settings import DEVELOPMENT_STORAGE, Settings, SettingsError, load_local_settings, project_name

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="the project (the `model` clients name); default: the one")


def run(args: argparse.Namespace) -> int:
    """Print the key (and nothing else, so `KEY=$(autopilot key)` works)."""
    from shared.front import endpoint_for, front_key

    try:
        load_local_settings()
        settings = Settings.from_env({"AUTOPILOT_STORAGE": DEVELOPMENT_STORAGE, **os.environ})
    except SettingsError as exc:
        print(f"autopilot key: {exc}", file=sys.stderr)
        return EXIT_USAGE
    project = args.project or project_name(settings)
    if endpoint_for(settings, project) is None:
        print(f"autopilot key: no project {project!r}; this install serves {project_name(settings)!r}",
              file=sys.stderr)
        return EXIT_USAGE
    key = front_key(settings)
    if not key:
        print("autopilot key: FRONT_DOOR_KEY is not set; set it (an app setting on Azure) and try again",
              file=sys.stderr)
        return EXIT_FAILED
    print(key)
    return EXIT_OK
