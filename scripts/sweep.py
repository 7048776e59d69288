"""Run the pairwise sweep of actors at every freeze point, and print its counts.

    python scripts/sweep.py --all        # every point of every ordered pair (tests/sweep.py)
    python scripts/sweep.py --points 4   # four points a pair, evenly spread

The suite runs two points a pair (tests/test_sweep_pairs.py); this runs the
same test with more. It needs what the suite needs (pip install -e '.[test]').
Exits with pytest's code; the counts go to standard output, and to
docs/protocol.md by hand.
"""

import collections
import json
import os
import subprocess
import sys
import tempfile


def main(argv):
    points = "all" if "--all" in argv else (argv[argv.index("--points") + 1] if "--points" in argv else "2")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as work:
        report = os.path.join(work, "sweep.jsonl")
        env = dict(os.environ, ETL_SWEEP_POINTS=points, ETL_SWEEP_REPORT=report)
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "tests/test_sweep_pairs.py", *[a for a in argv if a.startswith("-k")]],
                               cwd=root, env=env)
        rows = [json.loads(line) for line in open(report)] if os.path.exists(report) else []
    by_a = collections.Counter()
    for row in rows:
        by_a[row["a"]] += row["points"]
    print(f"{len(rows)} ordered pairs, {sum(r['points'] for r in rows)} freeze points "
          f"({'every point' if points == 'all' else f'{points} a pair'}); pytest exit {code}")
    for actor, count in sorted(by_a.items()):
        requests = {r["requests"] for r in rows if r["a"] == actor}
        print(f"  A = {actor}: {min(requests)} requests; {count} points against {len(ACTORS)} actors")
    return code


ACTORS = ("extract", "promote", "migrate", "rollback", "rollback --force", "vacuum", "register", "undo")

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
