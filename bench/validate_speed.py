#!/usr/bin/env python3
"""Benchmark: how long `python -m shipcheck.validate` takes, start to exit, as ./pipeline
runs it before set-up. Target: well under 2 s on the 2-core machine.

  python bench/validate_speed.py [RUNS]     (default 10 runs of each case)

Cases: the repo's shipcheck.yaml (valid, exit 0), the same with a bad --set (exit 2), and
a bare `python -c pass` for the interpreter's own start-up, measured in the same run (this
machine is noisy: compare within one run). The load average is recorded beside the figures.
Figures go to bench/results/validate-<UTC time>.json and are printed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CASES = {
    "python -c pass (interpreter start-up)": ([sys.executable, "-c", "pass"], 0),
    "validate shipcheck.yaml (valid)": ([sys.executable, "-m", "shipcheck.validate"], 0),
    "validate with --set namespace=Bad (exit 2)": ([sys.executable, "-m", "shipcheck.validate", "--set",
                                                    "namespace=Bad"], 2),
}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SHIPCHECK_CONFIG", "SHIPCHECK_CLUSTER")}
    figures = {}
    for name, (argv, expected) in CASES.items():
        seconds = []
        for _ in range(runs):
            start = time.monotonic()
            proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
            seconds.append(time.monotonic() - start)
            if proc.returncode != expected:
                raise SystemExit(f"{name}: exit {proc.returncode}, expected {expected}:\n{proc.stderr}")
        figures[name] = {"median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
                         "runs": runs}
        print(f"{name}: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s ({runs} runs)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"validate-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps({"load_average": os.getloadavg(), "cases": figures}, indent=2) + "\n")
    print(f"figures: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
