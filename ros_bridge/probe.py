"""An rclpy observer/driver in its own context and domain, spinning in a background thread.

`Probe` is how code outside the nodes talks to them over real ROS 2 middleware: record
topics, publish messages, call Trigger services, wait for conditions. `skillstack deploy`
uses it to follow the executor's status, the benchmark to time commands, the tests to
inject faults. Each probe owns an rclpy Context with its own ROS_DOMAIN_ID, so probes in
one process can sit on different domains.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ros_bridge._env import ensure_ros_env

ensure_ros_env()

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros_bridge._ros import COMMAND_QOS, RECORD_QOS, _make_executor  # noqa: E402

__all__ = ["Probe", "Recorder"]


@dataclass
class Recorder:
    """Messages received on one topic, with local receipt times (time.time(), seconds)."""

    topic: str
    items: list[tuple[float, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    callback: Callable[[Any], None] | None = None
    subscription: Any = None

    def publisher_count(self, probe: "Probe | None" = None) -> int:
        """How many publishers DDS discovery has matched to this recorder's subscription."""
        return 0 if self.subscription is None else self.subscription.get_publisher_count()

    def _on(self, msg: Any) -> None:
        t = time.time()
        with self.lock:
            self.items.append((t, msg))
        if self.callback is not None:
            self.callback(msg)

    def snapshot(self) -> list[tuple[float, Any]]:
        """A copy of what was received so far."""
        with self.lock:
            return list(self.items)

    def messages(self) -> list[Any]:
        """Just the messages."""
        with self.lock:
            return [m for _, m in self.items]

    def __len__(self) -> int:
        with self.lock:
            return len(self.items)

    def last(self) -> Any | None:
        """The newest message, or None."""
        with self.lock:
            return self.items[-1][1] if self.items else None

    def clear(self) -> None:
        """Forget everything received so far."""
        with self.lock:
            self.items.clear()


class Probe:
    """rclpy node in a private context (domain `domain_id`), spun by a background thread."""

    def __init__(self, domain_id: int | None = None, name: str = "skillstack_probe", localhost_only: bool = True,
                 executor: str = "events"):
        if localhost_only:
            # Read by the RMW when the context initialises.
            os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        # "events" (default): the nodes' executor (rclpy's C++ events executor). "single": rclpy's
        # Python executor, for a probe that destroys entities while it runs (the ros benchmark):
        # the events executor segfaulted in spin_once after that, even with the destruction on
        # the spin thread (ros2/rclpy#1644). The Python one is slower: a clean-clone CI with every
        # probe on it took 3 minutes longer.
        if executor not in ("single", "events"):
            raise ValueError(f"executor must be 'single' or 'events', got {executor!r}")
        self.executor = SingleThreadedExecutor(context=self.context) if executor == "single" else _make_executor(self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        # Entities to destroy, run by the spin thread between two spin_once calls: destroying a
        # subscription or action server from another thread while the executor is inside
        # spin_once segfaulted a clean-clone `make test` (ros2/rclpy#260, #1644; rclcpp#2163).
        self._to_destroy: list[tuple[Callable[[], None], threading.Event, list[BaseException]]] = []
        self._destroy_lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
        self._thread.start()
        self._clients: dict[str, Any] = {}

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
                self._run_destructions()
        except (ExternalShutdownException, rclpy.executors.ShutdownException):
            pass
        finally:
            self._run_destructions()

    def _run_destructions(self) -> None:
        with self._destroy_lock:
            pending, self._to_destroy = self._to_destroy, []
        for destroy, done, errors in pending:
            try:
                destroy()
            except Exception as e:  # handed to the caller, the spin thread goes on
                errors.append(e)
            finally:
                done.set()

    def destroy(self, *entities: Any, timeout: float = 5.0) -> None:
        """Destroy subscriptions, publishers, clients, action servers or recorders of this
        probe, on its spin thread (safe while it spins; see __init__). Returns once done."""
        from rclpy.client import Client
        from rclpy.publisher import Publisher
        from rclpy.subscription import Subscription

        by_type = ((Subscription, self.node.destroy_subscription), (Publisher, self.node.destroy_publisher),
                   (Client, self.node.destroy_client))
        for entity in entities:
            if isinstance(entity, Recorder):
                recorder = entity
                entity, recorder.subscription = recorder.subscription, None
                if entity is None:
                    continue
            destroy = next((partial(f, entity) for t, f in by_type if isinstance(entity, t)), entity.destroy)  # else an action server
            done, errors = threading.Event(), []
            with self._destroy_lock:
                self._to_destroy.append((destroy, done, errors))
            if not self._thread.is_alive():
                self._run_destructions()
            if not done.wait(timeout):
                raise TimeoutError(f"probe did not destroy {entity!r} within {timeout} s")
            if errors:
                raise errors[0]

    # -- topics ------------------------------------------------------------------------------
    def record(self, topic: str, msg_type: type, qos: QoSProfile | int = RECORD_QOS, callback: Callable[[Any], None] | None = None) -> Recorder:
        """Subscribe to `topic` and keep every message with its receipt time.

        The default QoS is reliable with a deep reader history, so a probe whose executor is
        held up (a busy machine) still receives every command rather than the last 10: tests
        compare consecutive commands, and a gap reads as a jump."""
        rec = Recorder(topic, callback=callback)
        rec.subscription = self.node.create_subscription(msg_type, topic, rec._on, qos)
        return rec

    def record_status(self, node: str = "skill_executor") -> Recorder:
        """Record /<node>/status, parsing its JSON (messages are dicts)."""
        return self._record_json(f"/{node}/status", 50)

    def record_summary(self, node: str = "skill_executor") -> Recorder:
        """Record /<node>/summary, the executor's latched start-up summary (a dict: profile,
        topics, joints, limits, rates, command paths; `lines` is what it logged)."""
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        return self._record_json(f"/{node}/summary", latched)

    def _record_json(self, topic: str, qos: QoSProfile | int) -> Recorder:
        rec = Recorder(topic)

        def on(msg: String) -> None:
            rec._on(json.loads(msg.data))

        rec.subscription = self.node.create_subscription(String, topic, on, qos)
        return rec

    def record_action_goals(self, name: str) -> tuple[Recorder, Any]:
        """Serve control_msgs/FollowJointTrajectory on `name`, accepting every goal at once and
        recording each goal's trajectory with its arrival time, like a topic message (the
        benchmark times goals this way). Returns (recorder, server: call destroy() when done)."""
        from rclpy.action import GoalResponse

        rec = Recorder(name)

        def on_goal(request: Any) -> Any:
            rec._on(request.trajectory)
            return GoalResponse.ACCEPT

        return rec, self.serve_action(name, "arm", goal_callback=on_goal)

    def serve_action(self, name: str, kind: str, goal_callback: Callable[[Any], Any] | None = None) -> Any:
        """An action server on `name` that succeeds every goal at once: kind "arm"
        (FollowJointTrajectory) or "gripper" (GripperCommand). Needs control_msgs (ImportError)."""
        from rclpy.action import ActionServer

        from ros_bridge.interfaces import action_types

        follow, grip = action_types()
        action = follow if kind == "arm" else grip

        def execute(handle: Any) -> Any:
            handle.succeed()
            return action.Result()

        kwargs = {"goal_callback": goal_callback} if goal_callback is not None else {}
        # Results kept 1 s (not 15 min): every status message lists all goals kept.
        return ActionServer(self.node, action, name, execute, result_timeout=1, **kwargs)

    def publisher(self, topic: str, msg_type: type, qos: QoSProfile | int = COMMAND_QOS) -> Any:
        """A publisher on `topic` (publish from any thread)."""
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until `publisher` has matched `count` subscriptions (discovery done)."""
        return self.wait_for(lambda: publisher.get_subscription_count() >= count, timeout)

    def now(self) -> float:
        """ROS time of this probe's clock, seconds."""
        return self.node.get_clock().now().nanoseconds * 1e-9

    # -- services ------------------------------------------------------------------------------
    def call_trigger(self, service: str, timeout: float = 10.0) -> Trigger.Response:
        """Call a std_srvs/Trigger service; raises TimeoutError if it does not answer."""
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.node.create_client(Trigger, service)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {service} not available after {timeout} s")
        future = client.call_async(Trigger.Request())
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"service {service} did not answer within {timeout} s")
        return future.result()

    # -- waiting -------------------------------------------------------------------------------
    @staticmethod
    def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
        """Poll `predicate` until true (returns True) or `timeout` s pass (returns False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        try:
            self.executor.shutdown(timeout_sec=1.0)
            self.node.destroy_node()
        finally:
            if self.context.ok():
                rclpy.shutdown(context=self.context)

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
