"""Skill package load time and single-observation call latency, against raw torch in the same run.

A 2x256 MLP skill (PandaPush-sized input with normalisation statistics) is packaged
once. Then, interleaved so machine load hits both sides alike:

- load: `skill_library.load_skill(path)` (layout check, manifest parse + digest, Ed25519
  signature and the signer's trust (trust store read), schema, weights header against the
  network, SHA-256 of every file, safetensors parse, network build) against the baseline of
  an unverified `safetensors.torch.load_file` + `build_network` + `load_state_dict`; the
  signature check alone (`signing.check_signature`) is timed too, to show its share;
- call: `skill(obs_dict)` for one observation dict (flatten, normalise, network,
  rescale, clip, numpy out) against the baseline raw `net(x)` torch module call on a
  ready (1, in_dim) tensor under `torch.inference_mode()`.

Goals (issues 3 and 27): call p99 <= 0.5 ms, load with verification <= 50 ms (median).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_CALL_P99_MS = 0.5
GOAL_LOAD_MS = 50.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", type=int, default=20000, help="timed single-observation calls per side (default 20000)")
    p.add_argument("--loads", type=int, default=50, help="timed package loads per side (default 50)")
    p.add_argument("--hidden", default="256,256", help="hidden layer sizes (default 256,256)")
    p.add_argument("--device", default="cpu", help="device for the skill and the baseline (default cpu)")
    p.add_argument("--batch", type=int, default=256, help="batch size for the batched-throughput row (default 256)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads for both sides (0 = torch default; default 1)")
    p.add_argument("--seed", type=int, default=0)


def _pct(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(xs), q))


def build_bench_package(out: Path, hidden: list[int], seed: int = 0) -> Path:
    """Package a random-weight MLP skill for PandaPush (observation + desired_goal, normalised)."""
    import numpy as np
    import torch

    import envs
    from policies.networks import build_network
    from skill_library.authoring import new_provenance, observation_spec_from_env, save_network_skill

    env = envs.make("skillstack/PandaPush-v0")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    keys = ("observation", "desired_goal")
    sizes = {k: int(np.prod(env.observation_space[k].shape)) for k in keys}
    mean = {k: rng.normal(0, 0.1, sizes[k]) for k in keys}
    std = {k: rng.uniform(0.5, 2.0, sizes[k]) for k in keys}
    obs_spec = observation_spec_from_env(env, keys, mean=mean, std=std, clip=10.0)
    arch = {"type": "mlp", "in_dim": obs_spec.size, "out_dim": 4, "hidden": hidden, "activation": "relu", "output_activation": "tanh"}
    net = build_network(arch)
    save_network_skill(
        out, name="bench_mlp", version="1.0.0", kind="rl", env=env, arch=arch, state_dict=net.state_dict(),
        observation=obs_spec, provenance=new_provenance(command="skillstack bench skills", seed=seed, source_commit=None),
        overwrite=True,
    )  # fmt: skip
    env.close()
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure and print the table; returns the JSON-able result."""
    import numpy as np
    import safetensors.torch
    import torch

    import envs
    from policies.networks import build_network
    from common.table import print_table
    from skill_library.manifest import load_manifest_json
    from skill_library.signing import SIGNATURE_FILE, SignaturePolicy, check_signature
    from skill_library.skill import load_skill

    hidden = [int(h) for h in str(args.hidden).split(",") if h]
    if args.threads > 0:
        # A control loop calls one observation at a time; extra intra-op threads only add
        # contention (on a busy 2-core machine a 256-batch slowed 40x with 2 threads).
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="skillstack-bench-skills-") as tmp:
        path = build_bench_package(Path(tmp) / "bench_mlp", hidden, args.seed)
        arch = load_skill(path).manifest.network
        weights = path / "weights.safetensors"

        def raw_load() -> Any:
            sd = safetensors.torch.load_file(str(weights))
            net = build_network(arch)
            net.load_state_dict(sd)
            return net.eval()

        def signature_check() -> Any:
            raw = load_manifest_json((path / "manifest.json").read_bytes())
            sig = (path / SIGNATURE_FILE).read_bytes()
            return check_signature(raw, raw["manifest_digest"], sig, SignaturePolicy(), str(path))

        # Warm up both paths (imports, allocator, first-call costs), then interleave.
        for _ in range(3):
            load_skill(path, device=args.device)
            raw_load()
        load_ms, raw_load_ms, sig_ms = [], [], []
        for _ in range(args.loads):
            t0 = time.perf_counter_ns()
            load_skill(path, device=args.device)
            load_ms.append((time.perf_counter_ns() - t0) / 1e6)
            t0 = time.perf_counter_ns()
            raw_load()
            raw_load_ms.append((time.perf_counter_ns() - t0) / 1e6)
            t0 = time.perf_counter_ns()
            signature_check()
            sig_ms.append((time.perf_counter_ns() - t0) / 1e6)

        skill = load_skill(path, device=args.device)
        device = skill.device
        net = skill.net
        env = envs.make("skillstack/PandaPush-v0")
        rng = np.random.default_rng(args.seed)
        obs_pool = []
        for i in range(64):
            o, _ = env.reset(seed=args.seed + i)
            for _ in range(int(rng.integers(0, 5))):
                o, *_ = env.step(env.action_space.sample())
            obs_pool.append(o)
        env.close()
        x_pool = [torch.as_tensor(skill.normalise(skill.flatten_obs(o)[0]), device=device) for o in obs_pool]

        # Correctness check: the skill equals the raw module (plus its rescale/clip) on these inputs.
        with torch.inference_mode():
            ref = np.clip(net(torch.cat(x_pool)).cpu().numpy(), -1, 1)
        got = np.stack([skill(o) for o in obs_pool])
        max_diff = float(np.max(np.abs(ref - got)))

        chunk = 1000
        call_us, raw_us = [], []
        for start in range(0, args.calls, chunk):
            n = min(chunk, args.calls - start)
            for i in range(n):
                o = obs_pool[i & 63]
                t0 = time.perf_counter_ns()
                skill(o)
                call_us.append((time.perf_counter_ns() - t0) / 1e3)
            with torch.inference_mode():
                for i in range(n):
                    x = x_pool[i & 63]
                    t0 = time.perf_counter_ns()
                    y = net(x)
                    if device != "cpu":
                        torch.cuda.synchronize()
                    raw_us.append((time.perf_counter_ns() - t0) / 1e3)
            del y

        batch = {k: np.stack([obs_pool[i % 64][k] for i in range(args.batch)]) for k in ("observation", "desired_goal")}
        reps = max(20, min(200, args.calls // 100))
        skill(batch)
        t0 = time.perf_counter()
        for _ in range(reps):
            skill(batch)
        batch_rate = reps * args.batch / (time.perf_counter() - t0)

    load_p50, raw_load_p50 = _pct(load_ms, 50), _pct(raw_load_ms, 50)
    call_p50, call_p99 = _pct(call_us, 50), _pct(call_us, 99)
    raw_p50, raw_p99 = _pct(raw_us, 50), _pct(raw_us, 99)
    rows = [
        ["load verified (median)", f"{load_p50:.2f} ms", f"{raw_load_p50:.2f} ms", f"{load_p50 / raw_load_p50:.2f}", f"<= {GOAL_LOAD_MS:g} ms", "yes" if load_p50 <= GOAL_LOAD_MS else "NO"],
        ["load verified (p99)", f"{_pct(load_ms, 99):.2f} ms", f"{_pct(raw_load_ms, 99):.2f} ms", f"{_pct(load_ms, 99) / _pct(raw_load_ms, 99):.2f}", "", ""],
        ["  of which signature + trust (median)", f"{_pct(sig_ms, 50):.2f} ms", "", "", "", ""],
        ["call p50", f"{call_p50:.1f} us", f"{raw_p50:.1f} us", f"{call_p50 / raw_p50:.2f}", "", ""],
        ["call p99", f"{call_p99:.1f} us", f"{raw_p99:.1f} us", f"{call_p99 / raw_p99:.2f}", f"<= {GOAL_CALL_P99_MS * 1000:g} us", "yes" if call_p99 <= GOAL_CALL_P99_MS * 1000 else "NO"],
        [f"batch {args.batch} throughput", f"{batch_rate:,.0f} obs/s", "", "", "", ""],
    ]  # fmt: skip
    print(f"skill: 2-layer MLP {hidden}, in {arch['in_dim']}, out {arch['out_dim']}, device {device}, "
          f"{args.calls} calls, {args.loads} loads; max |skill - raw| = {max_diff:.2e}")  # fmt: skip
    print_table(["metric", "skill", "baseline (raw torch, no verification)", "ratio", "goal", "met"], rows)
    return {
        "benchmark": "skills",
        "config": {"hidden": hidden, "in_dim": arch["in_dim"], "out_dim": arch["out_dim"], "device": device,
                   "calls": args.calls, "loads": args.loads, "batch": args.batch, "torch_threads": torch.get_num_threads()},
        "load_ms": {"p50": load_p50, "p99": _pct(load_ms, 99), "mean": float(np.mean(load_ms))},
        "baseline_load_ms": {"p50": raw_load_p50, "p99": _pct(raw_load_ms, 99)},
        "signature_check_ms": {"p50": _pct(sig_ms, 50), "p99": _pct(sig_ms, 99)},
        "load_ratio_p50": load_p50 / raw_load_p50,
        "call_us": {"p50": call_p50, "p90": _pct(call_us, 90), "p99": call_p99, "max": max(call_us)},
        "baseline_call_us": {"p50": raw_p50, "p90": _pct(raw_us, 90), "p99": raw_p99},
        "call_ratio_p50": call_p50 / raw_p50,
        "call_ratio_p99": call_p99 / raw_p99,
        "batch_obs_per_s": batch_rate,
        "max_abs_diff_vs_raw": max_diff,
        "goals": {"call_p99_ms": GOAL_CALL_P99_MS, "load_ms": GOAL_LOAD_MS,
                  "call_met": call_p99 <= GOAL_CALL_P99_MS * 1000, "load_met": load_p50 <= GOAL_LOAD_MS},
    }  # fmt: skip
