"""`skillstack envs`: list the registered tasks with their spaces."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="list the registered Gymnasium tasks", description="List skillstack env ids, "
                       "observation/goal/action sizes, episode length and cameras.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import envs
    from common.table import print_table

    rows = []
    for env_id in envs.ENV_IDS:
        env = envs.make(env_id)
        u = env.unwrapped
        rows.append({
            "id": env_id,
            "reward": u.reward_type,
            "obs": u.observation_space["observation"].shape[0],
            "goal": u.observation_space["desired_goal"].shape[0],
            "action": env.action_space.shape[0],
            "steps": env.spec.max_episode_steps,
            "objects": ",".join(u.objects) or "-",
            "cameras": ",".join(u.camera_names),
        })
        env.close()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(list(rows[0]), [list(r.values()) for r in rows])
    return 0
