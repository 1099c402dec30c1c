"""`autopilot`, the command line: the third front door, beside `functions/` (Azure's triggers) and `devhost/`.

Like them it drives the core in `shared/` and is never imported by it. `main.py` holds the parser and the one
place that turns errors into a line; each command group has a module of its own (`ops.py`: status, drop,
redeploy, retry, up; `endpoint.py`: invoke, endpoint credentials; `check_azure.py`; `key.py`), and
`context.py` builds the settings and the lifecycle from the environment for all of them.
"""
