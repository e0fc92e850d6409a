"""`skillstack demo`: the main job on the embedded default, in minutes on a laptop CPU."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the built-in default (scripted experts on every task, videos in runs/demo/)",
        description="Runs every task's scripted expert for one seeded episode, writes an mp4 per task "
        "to OUT (default runs/demo/) and prints a success table.",
    )
    p.add_argument("--out", default="runs/demo", help="output folder for videos (default: runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default: 0)")
    p.add_argument("--camera", default="front", help="camera to film (default: front)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    import envs
    from envs.experts import run_expert_episode
    from envs.video import write_mp4
    from skillstack.table import print_table

    out = Path(args.out)
    rows = []
    task_ids = [i for i in envs.ENV_IDS if "Dense" not in i]
    for env_id in tqdm(task_ids, desc="demo", unit="task"):
        env = envs.make(env_id)
        result = run_expert_episode(env, seed=args.seed, camera=args.camera)
        name = env_id.split("/")[1].removesuffix("-v0")
        video = write_mp4(result["frames"], out / f"{name}.mp4", fps=1.0 / env.unwrapped.control_dt)
        env.close()
        rows.append([env_id, "yes" if result["success"] else "NO", result["steps"], f"{result['safety_cost']:.3f}", str(video)])
    print_table(["task", "success", "steps", "safety cost", "video"], rows)
    failed = [r[0] for r in rows if r[1] != "yes"]
    print(f"{len(rows) - len(failed)}/{len(rows)} tasks solved by their scripted experts")
    return 1 if failed else 0
