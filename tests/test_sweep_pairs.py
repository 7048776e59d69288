"""The pairwise sweep of actors, sampled: every ordered pair, a few freeze points each (``tests/sweep.py``).

``scripts/sweep.py --all`` runs every point of every pair; docs/protocol.md has
the counts of its last full run.
"""

import importlib.util
import itertools

import pytest

from tests import sweep

TOOL = [a for a in sweep.ACTORS if a not in sweep.PHASE2]
PAIRS = list(itertools.product(TOOL, TOOL))
PHASE2_PAIRS = [(a, b) for a, b in itertools.product(sweep.ACTORS, sweep.ACTORS) if {a, b} & sweep.PHASE2]


@pytest.mark.parametrize("a, b", PAIRS, ids=[f"{a}|{b}" for a, b in PAIRS])
def test_every_pair_of_tool_actors_at_sampled_freeze_points(make_cfg, contentstore, a, b):
    sweep.run_pair(sweep.Sweep(make_cfg, contentstore), a, b)


@pytest.mark.skipif(importlib.util.find_spec("edxval") is None, reason="edxval is not installed")
@pytest.mark.parametrize("a, b", PHASE2_PAIRS, ids=[f"{a}|{b}" for a, b in PHASE2_PAIRS])
def test_every_pair_with_a_phase_ii_actor_at_sampled_freeze_points(val, make_cfg, contentstore, a, b):
    sweep.run_pair(sweep.Sweep(lambda **kw: make_cfg(**{"bucket": val.bucket, **kw}), contentstore, phase2=True), a, b)

