import os

import pytest
from hypothesis import HealthCheck, settings

# Headless rendering for every test process (EGL/Mesa on CI machines).
os.environ.setdefault("MUJOCO_GL", "egl")

# Wall time is never a pass/fail criterion in tests (benchmarks under bench/ measure speed):
# no per-example deadline and no too-slow health check in Hypothesis, whatever a test's own
# @settings leave out, so a busy machine cannot fail a property test.
settings.register_profile("skillstack", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("skillstack")

# `make test` runs in two steps (Makefile): the tests that start no ROS 2 nodes or Ray cluster on two
# pytest-xdist workers (`--dist loadgroup`), then the ones that do, in one process. Why:
# - the tests of one module stay together, in file order, on one worker: module-level state (counters a
#   last test checks) and module fixtures behave as in a serial run;
# - the modules that start nodes or a cluster (marked `nodes` here) run one at a time with nothing beside
#   them: their per-module ROS_DOMAIN_IDs never meet, and their timing (watchdogs, discovery, action goals)
#   is not squeezed by a training on the other core. Run beside the other worker they failed 2 of 860.
# tests/test_parallel_isolation.py checks that every module that starts nodes or a cluster is listed here.
NODE_MODULES = frozenset({
    "test_bag_import_ros", "test_cluster_ray", "test_demo", "test_docs", "test_robots_ros", "test_ros_conditions",
    "test_ros_e2e", "test_ros_perception", "test_ros_profiles_e2e", "test_signing_lock",
})


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the node modules' tests `nodes`; put every test in its module's xdist group (see above)."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else item.nodeid.split("::")[0]
        # a node module that sets NODES_PER_TEST marks its own tests (test_docs: only pages that start nodes)
        if module in NODE_MODULES and not getattr(item.module, "NODES_PER_TEST", False):
            item.add_marker(pytest.mark.nodes)
        item.add_marker(pytest.mark.xdist_group(module))
