"""`skillstack run-task TASK`: compose library skills to solve a long-horizon task (thin layer over
`planning.run_task`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run-task",
        help="solve a long-horizon task with library skills (plan + monitor + adapt, or blend)",
        description="Plan over the library's skills by their preconditions and effects, run them with "
        "monitoring, re-plan on failure and adapt per-skill preferences online (--mode plan), or train and run "
        "a SkillBlender-style blending policy (--mode blend). Prints success rate, mean skills per episode, "
        "re-plans and safety cost. TASK: pick-place, stack-two, stack-three, push-then-pick, an env id "
        "(with --goal) or a YAML spec file (goal: ..., env: ...).",
    )
    p.add_argument("task", metavar="TASK", help="task name, env id or YAML task spec")
    p.add_argument("--library", default=None, help="skill library (default: $SKILLSTACK_LIBRARY or ~/.skillstack/skills)")
    p.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    p.add_argument("--mode", choices=("plan", "blend"), default="plan", help="sequential planning (default) or blending")
    p.add_argument("--robot", default=None, help="robot to run on (default panda; plan mode): skills on the tcp layout run on any robot")
    p.add_argument("--goal", default=None, help="goal predicates overriding the task's, e.g. 'on(red,blue) & on(green,red)'")
    kinds = p.add_mutually_exclusive_group()
    kinds.add_argument("--learned-only", action="store_true", help="use learned (rl/bc) skills only; scripted skills are refused")
    kinds.add_argument("--scripted-only", action="store_true", help="use scripted skills only")
    p.add_argument("--video", metavar="OUT.mp4", default=None, help="film the first episode")
    p.add_argument("--camera", default="front", help="camera for --video (default front)")
    p.add_argument("--json", metavar="OUT", default=None, help="write the report (summary, episodes, decision log) as JSON")
    p.add_argument("--preferences", default=None, help="preference directory (default: $SKILLSTACK_PREFERENCES or ~/.skillstack/preferences)")
    p.add_argument("--no-adapt", action="store_true", help="do not update or save skill preferences")
    p.add_argument("--greedy", action="store_true", help="choose the best-scoring skill instead of sampling the softmax")
    p.add_argument("--replan-budget", type=int, default=3, help="re-plans allowed per episode (default 3)")
    p.add_argument("--blend-steps", type=int, default=20000, help="env steps to train the blending policy (default 20000)")
    p.add_argument("--blend-algo", choices=("sac", "ppo"), default="sac", help="SB3 algorithm for blending (default sac)")
    p.add_argument("--save-blender", metavar="DIR", default=None, help="with --mode blend: save the trained blending policy (JSON + safetensors)")
    p.add_argument("--blender", metavar="DIR", default=None, help="with --mode blend: evaluate this saved blending policy instead of training one")
    p.add_argument("--lock", metavar="FILE", default=None, help="run exactly the skills this lock file pins (skillstack skills lock TASK); anything else is refused")
    p.add_argument("--verbose", "-v", action="store_true", help="print every decision")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from common.atomic import atomic_write_json
    from planning.blend import BlendConfig
    from planning.executor import ControllerConfig
    from planning.run import run_task
    from common.table import print_table

    kinds = "learned" if args.learned_only else "scripted" if args.scripted_only else "all"
    cfg = ControllerConfig(replan_budget=args.replan_budget, adapt=not args.no_adapt, explore=not args.greedy)

    def on_episode(i: int, r: dict) -> None:
        print(f"episode {i}: {'success' if r['success'] else 'failure'}, {r['skills']} skills, {r['replans']} re-plans, "
              f"safety cost {r['safety_cost']:.3f}" + (f" ({r['stop_reason']})" if r["stop_reason"] else ""))
        if args.verbose:
            for d in r["decisions"]:
                print(f"  [{d['env_step']:>3}] {d['label']:<45} est {d['estimated_success']:.2f} pref {d['preference']:+.3f} "
                      f"p {d['probability']:.2f} -> {d['outcome']} ({d['reason']}, {d['steps']} steps)")

    if (args.save_blender or args.blender) and args.mode != "blend":
        raise ValueError("--save-blender and --blender go with --mode blend")
    if args.mode == "blend" and not args.blender:
        print(f"training the blending policy ({args.blend_algo}, {args.blend_steps} steps) ...")
    report = run_task(
        args.task, library=args.library, kinds=kinds, goal=args.goal, episodes=args.episodes, seed=args.seed,
        mode=args.mode, video=args.video, camera=args.camera, preferences=args.preferences, adapt=not args.no_adapt,
        config=cfg, blend=BlendConfig(total_steps=args.blend_steps, algo=args.blend_algo, seed=args.seed),
        on_episode=on_episode if args.mode == "plan" else None, blender=args.blender, blender_out=args.save_blender,
        lock=args.lock, robot=args.robot,
    )  # fmt: skip
    s = report["summary"]
    kinds_used = {k: sum(1 for x in report["skills"] if x["kind"] == k) for k in ("rl", "bc", "scripted")}
    print(f"\n{report['task']} ({report['env_id']}), goal: {report['goal']}, mode: {report['mode']}")
    print(f"skills: {len(report['skills'])} ({', '.join(f'{k} {n}' for k, n in kinds_used.items() if n)}); "
          f"figures below are for {report['skill_kinds']} skills")
    print_table(
        ["episodes", "success rate", "mean skills/episode", "mean re-plans", "mean safety cost"],
        [[s["episodes"], f"{100 * s['success_rate']:.0f}%", f"{s['mean_skills']:.2f}", f"{s['mean_replans']:.2f}", f"{s['mean_safety_cost']:.3f}"]],
    )
    if "mean_weights" in report:
        print("mean blend weights (dx, dy, dz, gripper): " + "; ".join(f"{k} {v}" for k, v in report["mean_weights"].items()))
    if report.get("blender_saved"):
        print(f"blending policy saved to {report['blender_saved']}")
    if report.get("video"):
        print(f"video: {report['video']}")
    if report.get("preferences_file"):
        print(f"preferences: {report['preferences_file']}")
    if args.json:
        path = atomic_write_json(args.json, report, indent=2, default=float)
        print(f"report written to {path}")
    return 0
