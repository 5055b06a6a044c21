"""The gateway comparison and the CJ load test in one run, written to one page.

    pdm run bench-performance                                   # the full run, several minutes
    pdm run bench-performance --levels 1,10 --requests 100 --skip-litellm \\
        --sessions 2 --comparisons 20 --outage-seconds 3       # a quick look
    pdm run bench-performance --write-docs                      # documentation/performance.md

Without `--write-docs` the page, its plots and the runs' JSON go to `--out`
(benchmarks/results/, untracked); with it the page and plots go to documentation/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from benchmarks.cj_load import CJLoadOptions, run_cj_load
from benchmarks.gateway.page import render
from benchmarks.gateway.run import GatewayOptions, run_gateway

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "documentation"


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    gateway, cj = GatewayOptions(), CJLoadOptions()
    found.add_argument("--levels", default=",".join(map(str, gateway.levels)))
    found.add_argument("--requests", type=int, default=gateway.requests, help="per level")
    found.add_argument("--upstream-latency-ms", type=float, default=gateway.upstream_latency_ms)
    found.add_argument("--skip-litellm", action="store_true")
    found.add_argument("--skip-gateway", action="store_true")
    found.add_argument("--skip-cj-load", action="store_true")
    found.add_argument("--sessions", type=int, default=cj.sessions)
    found.add_argument("--comparisons", type=int, default=cj.comparisons)
    found.add_argument("--outage-seconds", type=float, default=cj.outage_seconds)
    found.add_argument("--write-docs", action="store_true")
    found.add_argument("--note", help="a line put at the top of the page (how the run was made)")
    found.add_argument("--out", type=Path, default=RESULTS)
    return found


def main(arguments: argparse.Namespace) -> dict[str, Any]:
    """Run what was asked; returns {"gateway": ..., "cj_load": ..., "page": path}."""
    out: Path = arguments.out
    out.mkdir(parents=True, exist_ok=True)
    found: dict[str, Any] = {"gateway": None, "cj_load": None}
    if not arguments.skip_gateway:
        levels = tuple(int(x) for x in arguments.levels.split(","))
        options = GatewayOptions(
            levels, arguments.requests, arguments.upstream_latency_ms, not arguments.skip_litellm
        )
        found["gateway"] = asyncio.run(run_gateway(options, out / "work"))
        (out / "gateway.json").write_text(json.dumps(found["gateway"], indent=1))
    if not arguments.skip_cj_load:
        cj = CJLoadOptions(arguments.sessions, arguments.comparisons, arguments.outage_seconds)
        found["cj_load"] = asyncio.run(run_cj_load(cj))
        (out / "cj_load.json").write_text(json.dumps(found["cj_load"], indent=1))
    folder = DOCS if arguments.write_docs else out
    found["page"] = render(found["gateway"], found["cj_load"], folder, arguments.note)
    return found


if __name__ == "__main__":
    result = main(parser().parse_args())
    for check in (result["gateway"] or {}).get("checks", []):
        print(f"{check['target']}: {check['measured']} -> met={check['met']}")
    if result["cj_load"] is not None:
        cj = result["cj_load"]
        print(
            f"cj load: {cj['requests']} requests, lost {cj['lost']}, judged once "
            f"{cj['judged_exactly_once']}, drain {cj['drain_seconds_after_outage']} s"
        )
    print(f"page written to {result['page']}")
