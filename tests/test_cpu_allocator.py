"""keep_freed_memory: a fused critic ensemble's updates stop page-faulting (Linux/glibc)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Twenty critic updates of a 6-member 256x256 ensemble (1.5 MiB activations), after a warm-up;
# prints whether the tuning is on and the minor page faults per update.
_SCRIPT = r"""
import json, resource, sys, torch
sys.path.insert(0, sys.argv[1])
from policies.cpu_allocator import keep_freed_memory
from policies.multi_critic_sac import EnsembleMLP
torch.set_num_threads(1)
tuned = keep_freed_memory()
net, target = EnsembleMLP(6, 25, 1, [256, 256]), EnsembleMLP(6, 25, 1, [256, 256])
opt = torch.optim.Adam(net.parameters(), lr=3e-4)
def update():
    x, y = torch.randn(256, 25), None
    with torch.no_grad():
        y = target(x)
    loss = (net(x) - y).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
for _ in range(20):
    update()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    update()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(json.dumps({"tuned": tuned, "faults": faults, "again": keep_freed_memory()}))
"""


def _run(env_extra: dict[str, str]) -> dict:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(ROOT)], env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_keep_freed_memory_stops_page_faults_of_ensemble_updates():
    res = _run({"SKILLSTACK_MALLOC_TUNING": "1"})
    assert res["tuned"] is True and res["again"] is True  # idempotent
    # Untuned glibc page-faults ~1,000 times per update here (the activations go back to the
    # kernel when freed); tuned, the freed blocks are reused.
    assert res["faults"] < 50, res


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_keep_freed_memory_can_be_switched_off():
    res = _run({"SKILLSTACK_MALLOC_TUNING": "0"})
    assert res["tuned"] is False and res["again"] is False
