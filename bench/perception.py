"""Marker-based object poses against ground truth, with the arm moving, and what they cost.

The scripted stack-two expert runs (on true poses, so every variant sees the same frames); after
every control step the scene camera is rendered at each resolution and every visible cube's pose is
estimated (perception.MarkerPoseEstimator) and compared with the simulator's truth in the robot base
frame. Per resolution and pipeline: how often each cube was found, position and orientation error
(median, p95), rendering cost, and detection latency (p50, p99). The baseline, measured on the same
frames in the same run: OpenCV's own corners (ArucoDetector with subpixel refinement) without
perception's edge refinement, and bare `detectMarkers` for the latency floor.
"""

from __future__ import annotations

import argparse
import time

from bench import perception_ros


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=500, help="frames (control steps with the arm moving) (default 500)")
    p.add_argument("--resolutions", default="640x480,320x240", help="comma-separated WxH (default 640x480,320x240)")
    p.add_argument("--env", default="skillstack/PandaStack-v0", help="env whose expert moves the arm (default stack)")
    p.add_argument("--camera", default="scene", help="camera (default scene)")
    p.add_argument("--seed", type=int, default=0)
    perception_ros.add_ros_arguments(p)  # --ros: through ROS 2 (bench/perception_ros.py)


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def run(args: argparse.Namespace) -> dict:
    if getattr(args, "ros", False):
        return perception_ros.run(args)
    import numpy as np

    import envs
    from common.table import print_table
    from envs.experts import make_expert
    from perception import MarkerPoseEstimator, MarkerSet, SimCamera, quat_angle_deg, true_object_poses

    sizes = []
    for r in (s for s in args.resolutions.split(",") if s):
        try:
            w, h = (int(v) for v in r.lower().split("x"))
        except ValueError:
            raise ValueError(f"resolution {r!r} is not WxH, e.g. 640x480") from None
        sizes.append((w, h))
    if args.frames < 1:
        raise ValueError(f"--frames must be positive, got {args.frames}")
    env = envs.make(args.env)
    u = env.unwrapped
    markers = MarkerSet.load()
    cams = {s: SimCamera(u.model, u.data, args.camera, *s) for s in sizes}
    variants = [(s, "edges") for s in sizes] + [(s, "opencv") for s in sizes]
    estimators = {(s, v): MarkerPoseEstimator(markers, cams[s].camera, refine_edges=(v == "edges")) for s, v in variants}
    stats = {k: {"pos": [], "rot": [], "ms": [], "seen": 0, "present": 0, "markers": []} for k in variants}
    render_ms = {s: [] for s in sizes}
    detect_ms = {s: [] for s in sizes}
    frames, episode = 0, 0
    while frames < args.frames:
        obs, _ = env.reset(seed=args.seed + episode)
        expert = make_expert(env)
        episode += 1
        for _ in range(env.spec.max_episode_steps or 100):
            obs, _, _, _, info = env.step(expert.act(obs))
            truth = true_object_poses(u.model, u.data, u.objects)
            for s in sizes:
                t0 = time.perf_counter()
                img = cams[s].render()
                render_ms[s].append(1000 * (time.perf_counter() - t0))
                grey = img[:, :, 1].copy()
                t0 = time.perf_counter()
                estimators[(s, "opencv")]._detector.detectMarkers(grey)
                detect_ms[s].append(1000 * (time.perf_counter() - t0))
                for v in ("edges", "opencv"):
                    st = stats[(s, v)]
                    t0 = time.perf_counter()
                    poses = estimators[(s, v)].estimate(img)
                    st["ms"].append(1000 * (time.perf_counter() - t0))
                    for name, (p, q) in truth.items():
                        st["present"] += 1
                        if name in poses:
                            st["seen"] += 1
                            st["pos"].append(1000 * float(np.linalg.norm(poses[name].position - p)))
                            st["rot"].append(quat_angle_deg(poses[name].quat_wxyz, q))
                            st["markers"].append(poses[name].n_markers)
            frames += 1
            if frames >= args.frames or expert.done:
                break
    for c in cams.values():
        c.close()
    env.close()

    rows, results = [], []
    for (s, v), st in stats.items():
        r = {
            "resolution": f"{s[0]}x{s[1]}",
            "pipeline": "ArUco + edge-refined corners + fused PnP" if v == "edges" else "baseline: ArUco subpixel corners + fused PnP",
            "variant": v,
            "frames": frames,
            "detection_rate": st["seen"] / max(st["present"], 1),
            "pos_median_mm": _pct(st["pos"], 50),
            "pos_p95_mm": _pct(st["pos"], 95),
            "rot_median_deg": _pct(st["rot"], 50),
            "rot_p95_deg": _pct(st["rot"], 95),
            "mean_markers": float(np.mean(st["markers"])) if st["markers"] else 0.0,
            "render_ms_median": _pct(render_ms[s], 50),
            "estimate_ms_p50": _pct(st["ms"], 50),
            "estimate_ms_p99": _pct(st["ms"], 99),
            "detect_only_ms_p50": _pct(detect_ms[s], 50),
            "detect_only_ms_p99": _pct(detect_ms[s], 99),
        }
        results.append(r)
        rows.append([r["resolution"], v, f"{r['detection_rate']:.1%}", f"{r['pos_median_mm']:.2f}", f"{r['pos_p95_mm']:.2f}",
                     f"{r['rot_median_deg']:.2f}", f"{r['rot_p95_deg']:.2f}", f"{r['render_ms_median']:.1f}",
                     f"{r['detect_only_ms_p50']:.1f}/{r['detect_only_ms_p99']:.1f}",
                     f"{r['estimate_ms_p50']:.1f}/{r['estimate_ms_p99']:.1f}"])
    print(f"{frames} frames of {args.env} ({episode} episodes, expert moving the arm), camera {args.camera}")
    print_table(["resolution", "corners", "found", "pos median mm (goal <= 3)", "pos p95 mm (goal <= 8)", "rot median deg (goal <= 3)",
                 "rot p95 deg", "render ms", "detect only ms p50/p99", "estimate ms p50/p99 (goal p99 <= 20 at 640x480)"], rows)
    best = next(r for r in results if r["variant"] == "edges")
    base = next(r for r in results if r["variant"] == "opencv" and r["resolution"] == best["resolution"])
    ratio = base["pos_median_mm"] / best["pos_median_mm"] if best["pos_median_mm"] > 0 else float("nan")
    print(f"{best['resolution']}: median position error {best['pos_median_mm']:.2f} mm vs {base['pos_median_mm']:.2f} mm "
          f"with OpenCV's corners ({ratio:.1f}x), estimate p99 {best['estimate_ms_p99']:.1f} ms")
    return {"benchmark": "perception", "env": args.env, "camera": args.camera, "frames": frames, "episodes": episode,
            "results": results, "baseline_ratio_pos_median": ratio}
