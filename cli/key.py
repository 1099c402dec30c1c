"""`autopilot key [PROJECT]`: the front door's key, printed for a client's `api_key` (the only place it is).

    autopilot key [PROJECT]
        The key to send as `Authorization: Bearer KEY` to the front door (`openai.OpenAI(base_url=
        ".../api/v1", api_key=KEY)`). Without PROJECT: the install's key, which opens every project. With
        PROJECT (a folder under incoming/, or ENDPOINT_NAME for files at its root): that project's own key,
        derived from the install's (nothing is stored), which opens that project only.
"""

from __future__ import annotations

import argparse
import os
import sys

from shared.azurite import DEVELOPMENT_STORAGE
from shared.local_settings import load_local_settings
from shared.platforms.endpoint_names import project_name
from shared.settings import Settings, SettingsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", nargs="?", help="a project (the `model` clients name): print its own key; "
                        "default: the install's key, for every project")


def run(args: argparse.Namespace) -> int:
    """Print the key (and nothing else, so `KEY=$(autopilot key)` works)."""
    from shared.front import endpoint_for, front_key
    from shared.front.keys import project_key

    try:
        load_local_settings()
        settings = Settings.from_env({"AUTOPILOT_STORAGE": DEVELOPMENT_STORAGE, **os.environ})
    except SettingsError as exc:
        print(f"autopilot key: {exc}", file=sys.stderr)
        return EXIT_USAGE
    project = args.project
    if project is not None and endpoint_for(settings, project) is None:
        print(f"autopilot key: {project!r} cannot name a project (letters, digits, hyphens; the default "
              f"project is {project_name(settings)!r})", file=sys.stderr)
        return EXIT_USAGE
    key = front_key(settings)
    if not key:
        print("autopilot key: FRONT_DOOR_KEY is not set; set it (an app setting on Azure) and try again",
              file=sys.stderr)
        return EXIT_FAILED
    print(project_key(key, project) if project is not None else key)
    return EXIT_OK
