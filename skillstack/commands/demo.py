"""`skillstack demo`: the mission on learned parts, from the shipped model zoo, in minutes on a laptop CPU.

Stages, each a call into the public API, each leaving something to look at in OUT:
  1. experts  - every task's scripted expert, one seeded episode, an mp4 per task;
  2. zoo      - the zoo installed into OUT/library and OUT/segmenter, every signature checked
                against the project key (zoo.install_zoo);
  3. segment  - a freshly recorded pick-place video (an mp4 only: actions come from the segmenter's
                inverse dynamics) cut into skills by the shipped segmenter, with a PNG of the loss
                and the boundaries (segmentation.api.segment_files);
  4. compose  - the hierarchical controller stacks three cubes with the zoo's learned skills
                (planning), a video with its decisions overlaid; the library's scripted starter
                skills run the same task as the comparison row;
  5. deploy   - the composed task on the MuJoCo sim_robot over ROS 2, the hierarchical controller
                in the skill_executor node with the same learned skills (ros_bridge.deploy).
  (train    - optional: a Reach skill trained with multi-critic SAC here, `--stages train`.)
A table at the end: what each learned part did, scripted skills only as the comparison row.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

STAGES = ("experts", "zoo", "segment", "compose", "deploy", "train")
DEFAULT_STAGES = ("experts", "zoo", "segment", "compose", "deploy")
COMPOSE_ARTIFACTS = ("distilled",)  # the zoo's skills stack-three is composed from (one observation layout)
VIDEO_TASK = "skillstack/PandaPickPlace-v0"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the mission on learned parts from the model zoo: segment a video, compose, deploy to sim",
        description="Runs the whole stack on the shipped model zoo in a few minutes: scripted experts on every task "
        "(videos), installs the zoo (signed learned skills and the default segmenter), segments a recorded video "
        "(plot), composes stack-three from learned skills with the hierarchical controller (video with its "
        "decisions), deploys the composed task to the simulated robot over ROS 2, and prints a table in which "
        "scripted skills appear only as the comparison row. Everything lands in OUT (default runs/demo/).",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--camera", default="front", help="camera to film (default: front)")
    p.add_argument("--stages", default=",".join(DEFAULT_STAGES),
                   help=f"comma-separated stages to run (default: {','.join(DEFAULT_STAGES)}; also: train)")
    p.add_argument("--episodes", type=int, default=3, help="stack-three episodes per row of the table (default 3)")
    p.add_argument("--train-steps", type=int, default=6000, help="env steps for the optional Reach skill (default 6000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown demo stage(s) {unknown}; stages: {list(STAGES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[list[Any]] = []  # the final table: part, kind, result, output
    ok: dict[str, bool] = {}
    n = len(stages)
    k = iter(range(1, n + 1))
    if "experts" in stages:
        ok["experts"] = _experts(out, args, f"{next(k)}/{n}")
    if "zoo" in stages:
        ok["zoo"] = _zoo(out, f"{next(k)}/{n}", rows)
    if "segment" in stages:
        ok["segment"] = _segment(out, args, f"{next(k)}/{n}", rows)
    if "compose" in stages:
        ok["compose"] = _compose(out, args, f"{next(k)}/{n}", rows)
    if "deploy" in stages:
        ok["deploy"] = _deploy(out, args, f"{next(k)}/{n}", rows)
    if "train" in stages:
        ok["train"] = _train(out, args, f"{next(k)}/{n}", rows)
    if rows:
        from common.table import print_table

        _banner("the mission on learned parts")
        print_table(["part", "skills", "result", "output"], rows)
    failures = [s for s, good in ok.items() if not good]
    print(f"\ndemo finished: {len(stages) - len(failures)}/{len(stages)} stages succeeded"
          + (f" (failed: {', '.join(failures)})" if failures else "") + f"; outputs in {out}/")
    return 1 if failures else 0


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def _experts(out: Path, args: argparse.Namespace, step: str) -> bool:
    from tqdm import tqdm

    import envs
    from common.table import print_table
    from common.video import write_mp4
    from envs.experts import run_expert_episode

    _banner(f"{step} scripted experts on every task")
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


def _libraries(out: Path) -> tuple[Path, Path, Path]:
    return out / "library", out / "segmenter", out / "library-stack-three"


def _install(out: Path) -> dict[str, list[str]]:
    """The zoo into OUT/library and OUT/segmenter, and the compose artifacts alone into their own library."""
    from zoo.install import install_zoo

    library, segmenter, stack_lib = _libraries(out)
    done = install_zoo(library, segmenter)
    install_zoo(stack_lib, segmenter, names=list(COMPOSE_ARTIFACTS))
    return done


def _zoo(out: Path, step: str, rows: list[list[Any]]) -> bool:
    from common.table import print_table
    from zoo.install import zoo_rows

    _banner(f"{step} install the model zoo (verified against the project key)")
    done = _install(out)
    print_table(["artifact", "kind", "packages", "size", "build (2 cores)", "figures"], zoo_rows())
    skills = sum(len(v) for name, v in done.items() if name != "segmenter")
    segmenter = "segmenter" in done
    print(f"installed {skills} learned skills into {_libraries(out)[0]}"
          + (f" and the segmenter into {_libraries(out)[1]}" if segmenter else " (the zoo holds no segmenter)"))
    rows.append(["model zoo", f"{skills} learned skills" + (" + segmenter" if segmenter else ""),
                 "every signature by the project key", str(_libraries(out)[0])])
    return bool(done)


def _segment(out: Path, args: argparse.Namespace, step: str, rows: list[list[Any]]) -> bool:
    from demos.record import record_demos
    from segmentation import Segmenter, evaluate_episodes, load_hdf5_episodes
    from segmentation.api import segment_files

    _banner(f"{step} segment a recorded video with the shipped segmenter (actions from inverse dynamics)")
    segmenter_dir = _libraries(out)[1]
    if not (segmenter_dir / "segmenter.json").is_file():
        _install(out)
    seg = Segmenter.load(segmenter_dir)
    rec = record_demos(VIDEO_TASK, "expert", 1, out / "recorded.hdf5", seed=args.seed + 777, cameras=seg.cameras,
                       image_size=seg.image_size, video=True, video_camera=seg.cameras[0], overwrite=True, progress=False)
    video = rec.videos[0]
    run = segment_files(seg, [video], out=out / "segments.json", plot=out / "segments.png")
    result = run.episodes[0]
    truth = load_hdf5_episodes(rec.path, seg.cameras, seg.image_size)[0]  # the expert's phases: for scoring only
    f1 = evaluate_episodes([result.boundaries], [truth.phases])["f1@5"]
    print(f"{video}: {result.length} frames, boundaries at {result.boundaries} (expert's phase changes "
          f"{truth.true_boundaries}); F1@±5 {f1:.2f}; {len(result.segments)} segments of types "
          f"{[t for _, _, t in result.segments]}; plot {run.plot}")
    rows.append(["segment a video (mp4 only)", "shipped segmenter + inverse dynamics",
                 f"{len(result.boundaries)} boundaries, F1@±5 {f1:.2f} against the expert's phases", str(run.plot)])
    return run.plot is not None and run.plot.is_file()


def _overlay(frames: list[Any], decisions: list[Any], title: str) -> list[Any]:
    """Each frame with the task, the decision in force (skill, estimated success, probability) and the ones before."""
    import cv2
    import numpy as np

    out = []
    for t, frame in enumerate(frames):
        img = np.ascontiguousarray(frame).copy()
        lines = [title]
        for d in decisions:
            if d.env_step > t:
                break
            done = t >= d.env_step + d.steps
            mark = ("ok " if d.outcome == "success" else "x  ") if done else ">> "
            lines.append(f"{mark}{d.index + 1}. {d.label}  est {d.estimated_success:.0%}  p {d.probability:.2f}"
                         + ("  (re-plan)" if d.replan else ""))
        for i, text in enumerate(lines[:1] + lines[1:][-8:]):
            y = 18 + 17 * i
            cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        out.append(img)
    return out


def _compose(out: Path, args: argparse.Namespace, step: str, rows: list[list[Any]]) -> bool:
    import envs
    from common.video import write_mp4
    from planning import ControllerConfig, HierarchicalController, load_library_skills, resolve_task, run_task
    from planning.executor import summarize
    from planning.grounding import skills_obs_layout
    from skill_library.registry import SkillLibrary
    from skill_library.starter import build_starter_skills

    _banner(f"{step} compose stack-three from the zoo's learned skills (hierarchical controller)")
    stack_lib = _libraries(out)[2]
    if not (stack_lib / "index.json").is_file():
        _install(out)
    skills = load_library_skills(SkillLibrary(stack_lib), "learned")
    spec = resolve_task("stack-three")
    env = envs.make(spec.env_id, obs_layout=skills_obs_layout(skills))
    ctrl = HierarchicalController(skills, ControllerConfig(adapt=False), seed=args.seed)
    results = [ctrl.run_episode(env, spec.goal, seed=args.seed + i, camera=args.camera if i == 0 else None,
                                width=480, height=360) for i in range(args.episodes)]
    env.close()
    first = results[0]
    video = write_mp4(_overlay(first.frames, first.decisions, "stack-three, learned skills from the zoo"),
                      out / "stack_three.mp4", fps=25.0)
    learned = summarize(results)
    print(f"stack-three with learned skills ({', '.join(s.ref for s in skills)}): success {learned['success_rate']:.0%} "
          f"of {args.episodes}, {learned['mean_skills']:.1f} skills/episode, {learned['mean_replans']:.1f} re-plans; "
          f"decisions of episode 1: {[f'{d.label}:{d.outcome}' for d in first.decisions]}; video {video}")
    rows.append(["stack-three composed", f"learned ({len(skills)} zoo skills)",
                 f"{learned['success_rate']:.0%} of {args.episodes}, {learned['mean_skills']:.1f} skills/ep", str(video)])
    # the comparison row: the scripted starter skills on the same task and seeds
    scripted_lib = SkillLibrary(out / "library-scripted")
    build_starter_skills(scripted_lib)
    report = run_task("stack-three", library=scripted_lib, kinds="scripted", episodes=args.episodes, seed=args.seed,
                      video=out / "stack_three_scripted.mp4", camera=args.camera, adapt=False)["summary"]
    print(f"stack-three with scripted starter skills: success {report['success_rate']:.0%}, "
          f"{report['mean_skills']:.1f} skills/episode, {report['mean_replans']:.1f} re-plans, "
          f"safety cost {report['mean_safety_cost']:.3f}; video {out / 'stack_three_scripted.mp4'}")
    rows.append(["  comparison: stack-three", "scripted starter skills",
                 f"{report['success_rate']:.0%} of {args.episodes}, {report['mean_skills']:.1f} skills/ep",
                 str(out / "stack_three_scripted.mp4")])
    # the stage ran when learned skills were chosen and executed; how often they stack the tower is its figure
    return bool(first.decisions) and all(s.kind in ("rl", "bc") for s in skills)


def _deploy(out: Path, args: argparse.Namespace, step: str, rows: list[list[Any]]) -> bool:
    from ros_bridge.deploy import deploy

    _banner(f"{step} deploy the composed task on the simulated robot over ROS 2")
    stack_lib = _libraries(out)[2]
    if not (stack_lib / "index.json").is_file():
        _install(out)
    objects, positions = _scene("stack-three", args.seed)
    overrides = {"skill_executor": {"plan_task": "stack-three", "plan_skills": "learned", "library_root": str(stack_lib.resolve())},
                 "sim_robot": {"objects": objects, "object_positions": positions}}
    result = deploy("sim", overrides=overrides, duration=150.0, until_done=True, log_dir=out / "deploy-logs",
                    echo=lambda line: None)
    status = result.status or {}
    plan = status.get("plan") or {}
    # the executor says whether the goal held when it ended (it stops once the goal has held a moment)
    success = bool(status.get("goal_reached") or plan.get("success"))
    print(f"deploy stack-three on sim_robot (learned skills, skill_executor over ROS 2): state {result.final_state}, "
          f"done: {'yes' if result.done else 'no'}, goal reached: {'yes' if success else 'no'}, {result.seconds:.1f} s "
          f"({result.reason}); decisions {plan.get('decisions')}; fault {status.get('executor_fault') or 'none'}; "
          f"node logs in {out / 'deploy-logs'}")
    rows.append(["stack-three deployed", "learned, on sim_robot over ROS 2",
                 f"{'goal reached' if success else 'goal NOT reached'} in {result.seconds:.0f} s, "
                 f"{len(plan.get('decisions') or [])} skills", str(out / "deploy-logs")])
    # the stage ran when the nodes ran the plan to its end with learned skills; whether the goal was reached is its figure
    return result.ok and result.done and bool(plan.get("decisions"))


def _scene(task: str, seed: int) -> tuple[list[str], list[float]]:
    """The cubes of `task` and where its env's seeded reset puts them: sim_robot starts from the same scene."""
    import envs
    from planning import resolve_task

    env = envs.make(resolve_task(task).env_id)
    try:
        env.reset(seed=seed)
        u = env.unwrapped
        return list(u.objects), [round(float(v), 4) for name in u.objects for v in u.object_pos(name)]
    finally:
        env.close()


def _train(out: Path, args: argparse.Namespace, step: str, rows: list[list[Any]]) -> bool:
    import json

    from skill_library.publish import train_and_publish

    _banner(f"{step} train a Reach skill with multi-critic SAC")
    library = (out / "library").resolve()
    overrides = [f"total_timesteps={args.train_steps}", f"seed={args.seed}", f"export.library={library}",
                 "export.name=demo_reach", "eval.video=final"]
    run = train_and_publish("configs/reach.yaml", overrides, run_dir=out / "train-reach", command="skillstack demo")
    summary = json.loads((run / "summary.json").read_text())
    final = summary.get("final_eval") or {}
    print(f"Reach after {summary['env_steps']} env steps: success {final.get('success_rate', 0):.0%}, "
          f"safety cost {final.get('safety_cost', 0):.3f}; run folder {run}")
    rows.append(["Reach trained here", "multi-critic SAC", f"{final.get('success_rate', 0):.0%}", str(run)])
    return bool(summary.get("skills"))
