"""`autopilot invoke` and `autopilot endpoint credentials`: calling a live endpoint as
`az ml online-endpoint` does, on whichever platform the settings name.

    autopilot invoke --request-file FILE [--endpoint E] [--deployment D]
        POST the JSON in FILE to the endpoint (or straight to one deployment) and print the answer. The key is
        fetched for you and never printed. FILE may be in any shape Azure ML's chat samples use: the seed's
        {"input_data": {"input_string": [...], "parameters": {...}}}, {"input_data": [...], "params": {...}},
        or an OpenAI-style {"messages": [...]}.
    autopilot endpoint credentials [--endpoint E]
        The scoring URI, the auth mode and how to get the key (the key itself is not shown).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli import context
from shared.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_commands(subparsers: Any) -> None:
    """Add `invoke` and `endpoint credentials` to `autopilot`'s subparsers (each sets `run`)."""
    invoke = subparsers.add_parser("invoke", help="send a request file to an endpoint and print the answer")
    invoke.add_argument("--request-file", "-r", type=Path, required=True, help="the JSON request body")
    invoke.add_argument("--endpoint", "-n", help="endpoint name (default: ENDPOINT_NAME, autopilot-chat)")
    invoke.add_argument("--deployment", "-d", help="one deployment (default: as the traffic split says)")
    invoke.set_defaults(run=_invoke)
    endpoint = subparsers.add_parser("endpoint", help="endpoint commands")
    actions = endpoint.add_subparsers(dest="action", metavar="ACTION", required=True)
    credentials = actions.add_parser("credentials", help="scoring URI, auth mode and how to get the key")
    credentials.add_argument("--endpoint", "-n", help="endpoint name (default: ENDPOINT_NAME)")
    credentials.set_defaults(run=_credentials)


def _invoke(args: argparse.Namespace) -> int:
    from shared.platforms.port import NotFoundError, PlatformError

    path: Path = args.request_file
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"autopilot invoke: {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"autopilot invoke: {path} is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(payload, dict):
        print(f"autopilot invoke: {path} must hold a JSON object", file=sys.stderr)
        return EXIT_USAGE
    life = context.lifecycle()
    name = args.endpoint or life.ctx.settings.endpoint_name
    try:
        answer = life.ctx.call(life.platform.score, name, payload, args.deployment)
    except NotFoundError as exc:
        print(f"autopilot invoke: {exc}, looked for in {where(life.ctx.settings)} (`autopilot status` lists "
              "the live endpoints)", file=sys.stderr)
        return EXIT_FAILED
    except PlatformError as exc:
        print(f"autopilot invoke: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return EXIT_OK


def _credentials(args: argparse.Namespace) -> int:
    """What the platform says about calling the endpoint, the key left out (the hint says where it is)."""
    from shared.platforms.port import NotFoundError

    life = context.lifecycle()
    settings = life.ctx.settings
    name = args.endpoint or settings.endpoint_name
    try:
        access = life.ctx.call(life.platform.endpoint_access, name)
    except NotFoundError as exc:
        print(f"autopilot endpoint credentials: {exc}, looked for in {where(settings)} (`autopilot status` "
              "lists the live endpoints)", file=sys.stderr)
        return EXIT_FAILED
    lines = [f"endpoint:     {name} ({settings.platform})",
             f"scoring URI:  {access.scoring_uri}",
             "auth mode:    key (send `Authorization: Bearer KEY`, or `api-key: KEY`)"]
    if access.openai_base_url:
        lines.append(f"OpenAI base:  {access.openai_base_url}  (chat.completions, also with stream=true)")
    lines.append(f"key:          not shown; {access.key_hint}")
    lines.append("`autopilot invoke --request-file FILE` fetches the key for you.")
    print("\n".join(lines))
    return EXIT_OK


def where(settings: Settings) -> str:
    """Where the platform's endpoints were looked for (the composition root knows each platform's place)."""
    from shared.wiring import platform_location

    return platform_location(settings)
