"""`make test` runs the tests that start no ROS 2 nodes or Ray cluster on two pytest-xdist workers, and
then the ones that do, alone (tests/conftest.py). A module that starts them but is not marked would run
beside another test: two node graphs on one ROS domain id, or squeezed for the cores."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import conftest
import pytest

TESTS = Path(__file__).resolve().parent
# What starting nodes or a cluster looks like in a test module's source.
STARTS_NODES = re.compile(r"ROS_DOMAIN_ID|domain_id|Probe\(|NodeProcess|child_env\(|import ray|\bray\.|\"deploy\"")


def test_every_module_that_starts_nodes_or_a_cluster_is_in_the_node_group() -> None:
    """Each module whose source starts nodes is listed in conftest.NODE_MODULES, and each listed module exists
    and starts them (no stale name keeps a module out of the parallel pool for nothing)."""
    starting = {p.stem for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name and STARTS_NODES.search(p.read_text())}
    assert starting - conftest.NODE_MODULES == set(), "add these modules to NODE_MODULES in tests/conftest.py"
    assert conftest.NODE_MODULES - starting == set(), "these NODE_MODULES no longer start nodes or do not exist"


def test_each_test_is_grouped_with_its_module_and_node_tests_are_marked(request: pytest.FixtureRequest) -> None:
    """The hook gave this very test its module's group and no `nodes` mark; it marks a node module's test."""
    assert [m.args[0] for m in request.node.iter_markers("xdist_group")] == ["test_parallel_isolation"]
    assert not list(request.node.iter_markers("nodes"))
    marks: list[pytest.Mark] = []
    node_test = SimpleNamespace(module=SimpleNamespace(__name__="tests.test_ros_e2e"), nodeid="tests/test_ros_e2e.py::t",
                                add_marker=lambda m: marks.append(m.mark))
    conftest.pytest_collection_modifyitems(request.config, [node_test])
    assert [(m.name, m.args) for m in marks] == [("nodes", ()), ("xdist_group", ("test_ros_e2e",))]
