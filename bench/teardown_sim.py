"""Idle-teardown simulation: the real sweep decision on a simulated fleet, against the rules it replaces.

    python bench/teardown_sim.py [--endpoints 1000] [--days 7] [--sweep-minutes 15] [--seed 0]

A fleet of managed online endpoints (always busy, office hours, bursty, one-off demo then silence, never
used, keep-tagged) gets a week of per-minute traffic. Every sweep period the sweep's own `judge` and
`select` (shared.idle) run on each live endpoint with a fake clock and an activity source read
from the traffic, for: no sweep; a 15-day idle rule (Azure OpenAI's for fine-tuned deployments); ours at
TTL 1 h and 2 h. A request to a torn-down endpoint is counted as refused, and the user redeploys at once:
the endpoint bills again from that minute and refuses requests for --redeploy-minutes while it comes up.
Prints a table and, as its last line, one JSON object keyed by policy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.idle import judge, select
from shared.platforms.port import KEEP_TAG, MANAGED_TAG, EndpointInfo
from shared.settings import setting

START = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday, so minute // 1440 % 7 < 5 is a weekday
PATTERNS = ("busy", "office", "bursty", "demo", "never", "keep")
MIX = (0.10, 0.30, 0.20, 0.20, 0.10, 0.10)
POLICIES: dict[str, float | None] = {"no_sweep": None, "idle_15d": 15 * 24.0, "ttl_1h": 1.0, "ttl_2h": 2.0}


@dataclass
class Fleet:
    pattern: np.ndarray  # index into PATTERNS, per endpoint
    deployed: np.ndarray  # first deployment minute
    requests: np.ndarray  # (endpoints, minutes) request counts
    last_before: np.ndarray  # [i, m] for m in 0..minutes: last request minute < m (-1: none)
    next_from: np.ndarray  # [i, m] for m in 0..minutes: first request minute >= m (`minutes`: none)


def make_fleet(n: int, minutes: int, seed: int) -> Fleet:
    """Per-minute request counts for `n` endpoints deployed over the first two days, by traffic pattern."""
    rng = np.random.default_rng(seed)
    pattern = rng.choice(len(PATTERNS), size=n, p=MIX)
    deployed = rng.integers(0, min(2 * 1440, minutes), size=n)
    m = np.arange(minutes)
    rate = np.zeros((n, minutes), dtype=np.float32)

    busy = np.flatnonzero(pattern == PATTERNS.index("busy"))
    rate[busy] = rng.uniform(0.5, 5, (len(busy), 1))

    office = np.flatnonzero(pattern == PATTERNS.index("office"))
    tz = rng.choice([-8, -5, 0, 1, 2, 5.5, 8, 9], size=(len(office), 1)) * 60
    local = m[None, :] + tz
    clock = local % 1440
    opens, closes = rng.uniform(8, 10, (len(office), 1)) * 60, rng.uniform(16, 19, (len(office), 1)) * 60
    at_work = ((local // 1440) % 7 < 5) & (clock >= opens) & (clock < closes)
    at_lunch = (rng.random((len(office), 1)) < 0.5) & (clock >= 720) & (clock < 795)  # 75 min off
    rate[office] = np.where(at_work & ~at_lunch, rng.uniform(0.2, 1.0, (len(office), 1)), 0)

    for i in np.flatnonzero(pattern == PATTERNS.index("bursty")):
        gap_mean, t = rng.uniform(3, 24) * 60, int(deployed[i])
        while (t := t + int(rng.exponential(gap_mean))) < minutes:
            rate[i, t:t + rng.integers(5, 45)] = rng.uniform(1, 10)

    for i in np.flatnonzero(pattern == PATTERNS.index("demo")):
        begin = int(deployed[i]) + int(rng.integers(5, 240))
        rate[i, begin:begin + rng.integers(10, 60)] = rng.uniform(0.3, 2)

    keep = np.flatnonzero(pattern == PATTERNS.index("keep"))
    rate[keep] = np.where(rng.random((len(keep), 1)) < 0.5, 1 / 240, 0)  # a few a day, or none

    rate[m[None, :] < deployed[:, None]] = 0
    requests = rng.poisson(rate).astype(np.uint16)
    del rate
    has, m32 = requests > 0, m.astype(np.int32)
    last_at = np.maximum.accumulate(np.where(has, m32, np.int32(-1)), axis=1)
    last_before = np.concatenate([np.full((n, 1), -1, np.int32), last_at], axis=1)
    del last_at
    next_at = np.minimum.accumulate(np.where(has, m32, np.int32(minutes))[:, ::-1], axis=1)[:, ::-1]
    next_from = np.concatenate([next_at, np.full((n, 1), minutes, np.int32)], axis=1)
    return Fleet(pattern, deployed, requests, last_before, next_from)


@dataclass
class Outcome:
    summary: dict[str, float]
    idle_hours: np.ndarray  # per endpoint, after its last request
    refused: np.ndarray  # per endpoint


def simulate(fleet: Fleet, ttl_hours: float | None, period: int, cap: int, redeploy: int) -> Outcome:
    """Run one policy over the fleet; `ttl_hours` None is "no sweep"."""
    n, minutes = fleet.requests.shape
    at = [START + timedelta(minutes=k) for k in range(minutes + 1)]
    request_at = [START + timedelta(minutes=k, seconds=30) for k in range(minutes)]  # mid-minute
    endpoints = [EndpointInfo(f"ep-{i:04d}", _tags(fleet.pattern[i]), at[fleet.deployed[i]], {"blue": 100},
                              ("blue",), last_deployed_at=at[fleet.deployed[i]]) for i in range(n)]
    live_since = fleet.deployed.copy()  # start of the current up-time; -1 while torn down
    down_at = np.full(n, -1)
    billed, refused = np.zeros(n), np.zeros(n, dtype=np.int64)
    teardowns = redeploys = false_teardowns = deferred = 0
    last_teardown = np.full(n, -1)

    def redeploy_due(now: int) -> None:
        nonlocal redeploys
        down = np.flatnonzero(down_at >= 0)
        arrivals = fleet.next_from[down, down_at[down]]
        due = arrivals < min(now, minutes)
        for i, first in zip(down[due], arrivals[due], strict=True):
            refused[i] += int(fleet.requests[i, first:first + max(1, redeploy)].sum())
            redeploys += 1
            down_at[i], live_since[i] = -1, first
            endpoints[i] = replace(endpoints[i], last_deployed_at=at[first])

    ttl = timedelta(hours=ttl_hours if ttl_hours is not None else 0)
    keep = PATTERNS.index("keep")
    for now in range(period, minutes + 1, period) if ttl_hours is not None else range(0):
        redeploy_due(now)
        verdicts = []
        for live in np.flatnonzero((down_at < 0) & (fleet.deployed <= now)):
            last = fleet.last_before[live, now]
            verdicts.append(judge(endpoints[live], request_at[last] if last >= 0 else None, at[now], ttl))
        chosen, waiting = select(verdicts, cap)
        deferred += len(waiting)
        for verdict in chosen:
            i = int(verdict.endpoint[3:])
            # Checked from the traffic itself, not from the verdict: too soon after a request or a
            # (re)deployment, or keep-tagged.
            quiet = now - max(fleet.last_before[i, now] + 0.5, live_since[i])
            if quiet < ttl.total_seconds() / 60 or fleet.pattern[i] == keep:
                false_teardowns += 1
            billed[i] += now - live_since[i]
            down_at[i], live_since[i], last_teardown[i] = now, -1, now
            teardowns += 1
    redeploy_due(minutes + 1)
    up = down_at < 0
    billed[up] += minutes - live_since[up]

    last_request = fleet.last_before[:, minutes]
    mark = np.maximum(np.where(last_request >= 0, last_request + 0.5, -1), fleet.deployed)
    end = np.where(up, minutes, last_teardown)
    idle = (end - mark) / 60
    counted = fleet.pattern != keep
    summary = {
        "idle_hours_after_last_request_total": round(float(idle[counted].sum()), 1),
        "idle_hours_after_last_request_p95": round(float(np.percentile(idle[counted], 95)), 3),
        "idle_hours_after_last_request_max": round(float(idle[counted].max()), 3),
        "false_teardowns": false_teardowns,
        "requests_to_torn_down": int(refused.sum()),
        "billed_endpoint_hours": round(float(billed.sum()) / 60, 1),
        "teardowns": teardowns,
        "redeploys": redeploys,
        "deferred_by_cap": deferred,
        "keep_tagged_idle_hours": round(float(idle[~counted].sum()), 1),
    }
    return Outcome(summary, idle, refused)


def _tags(pattern: int) -> dict[str, str]:
    tags = {MANAGED_TAG: "true"}
    if pattern == PATTERNS.index("keep"):
        tags[KEEP_TAG] = "true"
    return tags


def print_tables(outcomes: dict[str, Outcome], fleet: Fleet, period_h: float, seconds: float,
                 args: argparse.Namespace) -> None:
    """The policies side by side, then where the idle hours and refused requests come from, by pattern."""
    from rich.console import Console
    from rich.table import Table

    title = (f"Idle teardown: {args.endpoints} endpoints, {args.days:g} days at minute resolution, sweep "
             f"every {args.sweep_minutes} min, at most {args.max_deletions} deletions a sweep")
    caption = (f"idle h = hours billed after an endpoint's last request (or deployment), per endpoint, "
               f"keep-tagged ones excluded. A request to a torn-down endpoint is refused and the user "
               f"redeploys ({args.redeploy_minutes} min to come up, refusing what arrives meanwhile). "
               f"{int(fleet.requests.sum()):,} requests in all; {seconds:.1f}s.")
    table = Table(title=title, caption=caption)
    columns = ("billed endpoint-h", "idle h total", "idle h p95", "idle h max", "bound TTL+period",
               "false teardowns", "teardowns", "deferred by cap", "refused requests", "redeploys")
    table.add_column("policy")
    for column in columns:
        table.add_column(column, justify="right")
    for name, outcome in outcomes.items():
        r, ttl = outcome.summary, POLICIES[name]
        bound = "-" if ttl is None else f"{ttl + period_h:g} {'ok' if r['within_bound'] else 'EXCEEDED'}"
        idle = (f"{r[f'idle_hours_after_last_request_{k}']:{f}}" for k, f in
                (("total", ",.0f"), ("p95", ".2f"), ("max", ".2f")))
        table.add_row(name, f"{r['billed_endpoint_hours']:,.0f}", *idle, bound, str(r["false_teardowns"]),
                      str(r["teardowns"]), str(r["deferred_by_cap"]),
                      f"{r['requests_to_torn_down']:,}", str(r["redeploys"]))
    by_pattern = Table(title="By traffic pattern: idle hours after last request (total) / refused requests")
    by_pattern.add_column("pattern")
    by_pattern.add_column("endpoints", justify="right")
    for name in outcomes:
        by_pattern.add_column(name, justify="right")
    for k, pattern in enumerate(PATTERNS):
        rows = fleet.pattern == k
        cells = [f"{o.idle_hours[rows].sum():,.0f} / {o.refused[rows].sum():,}" for o in outcomes.values()]
        by_pattern.add_row(pattern, str(int(rows.sum())), *cells)
    console = Console(width=200)
    console.print(table)
    console.print(by_pattern)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--sweep-minutes", type=int, default=15)
    parser.add_argument("--max-deletions", type=int, default=setting("SWEEP_MAX_DELETIONS").read({}, "local"))
    parser.add_argument("--redeploy-minutes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    fleet = make_fleet(args.endpoints, int(args.days * 1440), args.seed)
    period_h = args.sweep_minutes / 60
    outcomes: dict[str, Outcome] = {}
    for name, ttl in POLICIES.items():
        outcome = simulate(fleet, ttl, args.sweep_minutes, args.max_deletions, args.redeploy_minutes)
        worst = outcome.summary["idle_hours_after_last_request_max"]
        outcome.summary["within_bound"] = ttl is None or worst <= ttl + period_h + 1e-9
        outcomes[name] = outcome
    print_tables(outcomes, fleet, period_h, time.perf_counter() - started, args)
    print(json.dumps({**{name: o.summary for name, o in outcomes.items()}, "sweep_period_hours": period_h}))


if __name__ == "__main__":
    main()
