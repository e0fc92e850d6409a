"""`skillstack demo`: the main job on the embedded default, in minutes on a laptop CPU.

Four stages, each a call into the public API, each leaving something to look at in OUT:
  1. experts  - every task's scripted expert, one seeded episode, an mp4 per task;
  2. train    - a Reach skill with multi-critic SAC (skill_library.train_and_publish), published as a
                skill package into OUT/library with its eval video and descriptors;
  3. compose  - the hierarchical controller stacks three cubes with the library's scripted
                starter skills (planning.run_task), with a video;
  4. deploy   - the trained Reach skill drives the MuJoCo sim_robot through ROS 2 topics
                and the safety layer (ros_bridge.deploy).
"""

from __future__ import annotations

import argparse

STAGES = ("experts", "train", "compose", "deploy")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the built-in default: experts, train a skill, compose a task, deploy to sim",
        description="Runs the whole stack on the built-in default in a few minutes: scripted experts on every task "
        "(videos), trains a Reach skill with multi-critic SAC into a demo library, composes stack-three from library "
        "skills with the hierarchical controller (video), and deploys the trained skill to the simulated robot over "
        "ROS 2. Everything lands in OUT (default runs/demo/).",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--camera", default="front", help="camera to film (default: front)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated stages to run (default: all of {','.join(STAGES)})")
    p.add_argument("--train-steps", type=int, default=6000, help="env steps for the Reach skill (default 6000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown demo stage(s) {unknown}; stages: {list(STAGES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    skill_dir = None
    if "experts" in stages and not _experts(out, args):
        failures.append("experts")
    if "train" in stages:
        skill_dir = _train(out, args)
        if skill_dir is None:
            failures.append("train")
    if "compose" in stages and not _compose(out, args):
        failures.append("compose")
    if "deploy" in stages and not _deploy(out, args, skill_dir):
        failures.append("deploy")
    print(f"\ndemo finished: {len(stages) - len(failures)}/{len(stages)} stages succeeded; outputs in {out}/")
    return 1 if failures else 0


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def _experts(out, args) -> bool:
    from tqdm import tqdm

    import envs
    from envs.experts import run_expert_episode
    from common.video import write_mp4
    from common.table import print_table

    _banner("1/4 scripted experts on every task")
    rows = []
    task_ids = [i for i in envs.ENV_IDS if "Dense" not in i]
    for env_id in tqdm(task_ids, desc="experts", unit="task"):
        env = envs.make(env_id)
        result = run_expert_episode(env, seed=args.seed, camera=args.camera)
        name = env_id.split("/")[1].removesuffix("-v0")
        video = write_mp4(result["frames"], out / f"{name}.mp4", fps=1.0 / env.unwrapped.control_dt)
        env.close()
        rows.append([env_id, "yes" if result["success"] else "NO", result["steps"], f"{result['safety_cost']:.3f}",
                     str(video)])
    print_table(["task", "success", "steps", "safety cost", "video"], rows)
    solved = sum(r[1] == "yes" for r in rows)
    print(f"{solved}/{len(rows)} tasks solved by their scripted experts")
    return solved == len(rows)


def _train(out, args):
    import json

    from skill_library.publish import train_and_publish

    _banner("2/4 train a Reach skill with multi-critic SAC")
    library = (out / "library").resolve()
    run_dir = out / "train-reach"
    overrides = [
        f"total_timesteps={args.train_steps}",
        f"seed={args.seed}",
        f"export.library={library}",
        "export.name=demo_reach",
        "eval.video=final",
    ]
    run = train_and_publish("configs/reach.yaml", overrides, run_dir=run_dir, command="skillstack demo")
    summary = json.loads((run / "summary.json").read_text())
    final = summary.get("final_eval") or {}
    skills = summary.get("skills") or []
    print(f"Reach after {summary['env_steps']} env steps: success {final.get('success_rate', 0):.0%}, "
          f"safety cost {final.get('safety_cost', 0):.3f}; run folder {run}")
    if not skills:
        print("no skill was exported")
        return None
    first = skills[0]
    path = first.get("path") if isinstance(first, dict) else str(first)
    print(f"skill package: {path} (added to {library})")
    return path


def _compose(out, args) -> bool:
    from planning.run import run_task
    from skill_library.registry import SkillLibrary
    from skill_library.starter import build_starter_skills

    _banner("3/4 compose stack-three from library skills (hierarchical controller)")
    library = SkillLibrary(out / "library")
    build_starter_skills(library)
    report = run_task("stack-three", library=library, kinds="scripted", episodes=2, seed=args.seed,
                      video=out / "stack_three.mp4", camera=args.camera, adapt=False)["summary"]
    print(f"stack-three with scripted starter skills: success {report['success_rate']:.0%}, "
          f"{report['mean_skills']:.1f} skills/episode, {report['mean_replans']:.1f} re-plans, "
          f"safety cost {report['mean_safety_cost']:.3f}; video {out / 'stack_three.mp4'}")
    return report["success_rate"] > 0


def _deploy(out, args, skill_dir) -> bool:
    from ros_bridge.deploy import deploy

    _banner("4/4 deploy to the simulated robot over ROS 2")
    overrides = {"skill_executor": {"skill": str(skill_dir)}} if skill_dir else None
    if not skill_dir:
        print("no trained skill (train stage skipped or failed): deploying the scripted Reach expert")
    result = deploy("sim", overrides=overrides, duration=30.0, until_done=True, log_dir=out / "deploy-logs",
                    echo=lambda line: None)
    print(f"deploy on sim_robot: state {result.final_state}, reached goal: {'yes' if result.done else 'no'}, "
          f"{result.seconds:.1f} s ({result.reason}); node logs in {out / 'deploy-logs'}")
    return result.ok and result.done
