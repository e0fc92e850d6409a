"""How each zoo artifact is built: one public-API call per artifact, with its config and seed.

Every recipe writes its artifact into an empty folder `out` and returns what it measured
(`figures`) and, for skills, one record per package. Budgets are sized to train on two shared
cores in minutes (docs/zoo.md has the times); a recipe's figures are the honest result of that
budget, measured at build time, never typed in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.manifest import ZOO_DIR

__all__ = ["RECIPES", "Recipe", "skill_record"]

REPO_ROOT = ZOO_DIR.parent
Log = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    """One artifact's recipe: its kind, what it is, the public API it calls with which parameters."""

    name: str
    kind: str  # skill | segmenter
    description: str
    api: str
    params: dict[str, Any]
    build: Callable[["Recipe", Path, Path, Log], dict[str, Any]]
    needs: tuple[str, ...] = field(default=())  # artifacts it reads (built first)

    def to_dict(self) -> dict[str, Any]:
        return {"api": self.api, **self.params, **({"needs": list(self.needs)} if self.needs else {})}


def skill_record(manifest: Any) -> dict[str, Any]:
    """What the zoo manifest lists per skill package: name, version, kind, predicates, own success."""
    totals = (manifest.descriptors or {}).get("totals", {}) if manifest.descriptors else {}
    return {
        "name": manifest.name, "version": manifest.version, "kind": manifest.kind,
        "preconditions": list(manifest.preconditions), "effects": list(manifest.effects),
        "success": None if "success_rate" not in totals else round(float(totals["success_rate"]), 3),
    }  # fmt: skip


def _copy_package(src: Path, out: Path) -> Any:
    from skill_library.package import verify_package
    from skill_library.signing import PERMISSIVE

    dest = out / src.name
    shutil.copytree(src, dest)
    return verify_package(dest, policy=PERMISSIVE)


# ----------------------------------------------------------------- multi-critic RL skills


def _build_rl(recipe: Recipe, out: Path, work: Path, log: Log) -> dict[str, Any]:
    from skill_library.publish import train_and_publish

    p = recipe.params
    overrides = [f"seed={p['seed']}", "export.add_to_library=false", *p["overrides"]]
    run = train_and_publish(str(REPO_ROOT / p["config"]), overrides, run_dir=work / "run", command="skillstack zoo build")
    summary = json.loads((run / "summary.json").read_text())
    if not summary.get("skills"):
        raise RuntimeError(f"{recipe.name}: training exported no skill (see {run})")
    manifest = _copy_package(Path(summary["skills"][0]["path"]), out)
    final = summary.get("final_eval") or {}
    figures = {
        "env_steps": int(summary["env_steps"]),
        "final_eval_success": round(float(final.get("success_rate", 0.0)), 3),
        "final_eval_episodes": int(p.get("eval_episodes", 0)) or None,
        "final_eval_safety_cost": round(float(final.get("safety_cost", 0.0)), 4),
    }
    log(f"{recipe.name}: success {figures['final_eval_success']:.0%} after {figures['env_steps']} env steps")
    return {"figures": figures, "packages": [skill_record(manifest)]}


def _rl(name: str, config: str, steps: int, extra: list[str], description: str) -> Recipe:
    eval_episodes = 20
    overrides = [f"total_timesteps={steps}", f"eval.episodes={eval_episodes}", "eval.video=false",
                 f"eval.freq={steps}", f"checkpoint.freq={steps}", "export.descriptors.grid=2",
                 "export.descriptors.episodes_per_cell=2", *extra]
    return Recipe(name, "skill", description, "skill_library.train_and_publish",
                  {"config": config, "overrides": overrides, "seed": 0, "eval_episodes": eval_episodes}, _build_rl)


# ----------------------------------------------------------------- distilled long-horizon skills


def _build_distilled(recipe: Recipe, out: Path, work: Path, log: Log) -> dict[str, Any]:
    from planning import DistillConfig, distill_skills, load_library_skills, run_task
    from skill_library import SkillLibrary, build_starter_skills

    p = recipe.params
    teachers_lib, students_lib = SkillLibrary(work / "teachers"), SkillLibrary(work / "students")
    build_starter_skills(teachers_lib)
    config = DistillConfig(tasks=tuple(p["tasks"]), episodes_per_task=p["episodes_per_task"], epochs=p["epochs"],
                           seed=p["seed"], grid=p["grid"], episodes_per_cell=p["episodes_per_cell"], obs_layout=p["obs_layout"],
                           min_executions=p.get("min_executions", 1))
    students, stats = distill_skills(load_library_skills(teachers_lib, "scripted"), students_lib, config, log=log)
    packages = []
    for s in students:
        manifest = students_lib.manifest(s.ref)
        students_lib.export(s.ref, out / manifest.name)
        packages.append(skill_record(manifest))
    figures: dict[str, Any] = {"demo_env_steps": int(stats.get("env_steps", 0)) if isinstance(stats, dict) else None}
    for task in p["eval_tasks"]:
        summary = run_task(task, library=students_lib, kinds="learned", episodes=p["eval_episodes"], seed=10_000,
                           adapt=False)["summary"]
        figures[f"{task}_success"] = round(float(summary["success_rate"]), 3)
        log(f"{task} with the distilled skills: {summary['success_rate']:.0%} of {p['eval_episodes']}")
    figures["eval_episodes"] = p["eval_episodes"]
    return {"figures": figures, "packages": packages}


# ----------------------------------------------------------------- the default segmenter


def _record(env_id: str, episodes: int, out: Path, seed: int, cameras: tuple[str, ...], size: int) -> Path:
    from demos.record import record_demos

    record_demos(env_id, "expert", episodes, out, seed=seed, cameras=cameras, image_size=size, overwrite=True,
                 durable=False, progress=False)
    return out


def _build_segmenter(recipe: Recipe, out: Path, work: Path, log: Log) -> dict[str, Any]:
    from segmentation.api import train_segmenter

    p = recipe.params
    cams = tuple(p["cameras"])
    files = [_record(env_id, p["episodes_per_task"], work / f"{env_id.split('/')[1]}.hdf5", p["demo_seed"] + 1000 * i,
                     cams, p["image_size"]) for i, env_id in enumerate(p["tasks"])]
    seg = train_segmenter(files, out, cameras=cams, image_size=p["image_size"], epochs=p["epochs"], seed=p["seed"],
                          idm=True, log=log)
    seg.meta["train_files"] = [f.name for f in files]  # not this machine's temp paths
    seg.save(out)
    v, vv = seg.meta["validation"], seg.meta.get("validation_video") or {}
    figures = {
        "rule": seg.params.rule, "gap": seg.params.gap_text, "min_len": seg.params.min_len,
        "validation_f1@5": round(float(v["f1@5"]), 3),
        "video_rule": None if seg.video_params is None else f"{seg.video_params.rule}, gap {seg.video_params.gap_text}",
        "video_validation_f1@5": round(float(vv["f1@5"]), 3) if vv else None,
        "skill_types": seg.skill_types.k if seg.skill_types is not None else None,
    }
    figures.update(_fresh_video_f1(seg, p, work, log))
    log(f"segmenter: validation F1@±5 {figures['validation_f1@5']} (recorded actions), "
        f"{figures['video_validation_f1@5']} (video path)")
    return {"figures": figures, "packages": []}


def _fresh_video_f1(seg: Any, p: dict[str, Any], work: Path, log: Log) -> dict[str, Any]:
    """F1@±5 on fresh episodes of the training tasks, as videos (actions from inverse dynamics)."""
    from segmentation import evaluate_episodes, label_with_idm, load_hdf5_episodes

    n = int(p.get("fresh_episodes", 0))
    if not n:
        return {}
    out: dict[str, Any] = {}
    for mode in ("recorded_actions", "video"):
        bounds, phases = [], []
        for i, env_id in enumerate(p["tasks"]):
            f = work / f"fresh-{i}.hdf5"
            if not f.exists():
                _record(env_id, n, f, 50_000 + 1000 * i, tuple(p["cameras"]), p["image_size"])
            for ep in load_hdf5_episodes(f, seg.cameras, seg.image_size):
                ep = label_with_idm(ep, seg.idm) if mode == "video" else ep
                bounds.append(seg.segment(ep).boundaries)
                phases.append(ep.phases)
        out[f"fresh_f1@5_{mode}"] = round(float(evaluate_episodes(bounds, phases)["f1@5"]), 3)
    out["fresh_episodes_per_task"] = n
    return out


# ----------------------------------------------------------------- skills discovered in video


def _build_video_skills(recipe: Recipe, out: Path, work: Path, log: Log) -> dict[str, Any]:
    from zoo.discover import discover, run_learned

    p = recipe.params
    seg_dir = ZOO_DIR / "artifacts" / "segmenter"
    files = [_record(env_id, p["episodes_per_task"], work / f"{env_id.split('/')[1]}.hdf5", p["demo_seed"] + 1000 * i,
                     ("front",), 64) for i, env_id in enumerate(p["tasks"])]
    lib = work / "library"
    report = discover(files, lib, segmenter=seg_dir, report_dir=work / "report", seed=p["seed"], bc_epochs=p["bc_epochs"],
                      grid=p["grid"], episodes_per_cell=p["episodes_per_cell"], clips=False, progress=False, log=log,
                      verify_segmenter=False)
    from skill_library import SkillLibrary

    library = SkillLibrary(lib)
    packages = []
    for s in report.skills:
        manifest = library.manifest(s["ref"])
        library.export(s["ref"], out / manifest.name)
        packages.append(skill_record(manifest))
    figures = {"videos": len(report.videos), "segments": sum(v["segments"] for v in report.videos),
               "skill_types": report.skill_types, "skills": len(packages)}
    for task in p["eval_tasks"]:
        summary = run_learned(task, lib, p["eval_episodes"])
        figures[f"{task}_success"] = summary
        log(f"{task} with the discovered skills: {summary:.0%} of {p['eval_episodes']}")
    figures["eval_episodes"] = p["eval_episodes"]
    return {"figures": figures, "packages": packages}


# ----------------------------------------------------------------- the zoo

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    _rl("reach", "configs/reach.yaml", 3000, [], "Reach a goal in free space (multi-critic SAC: task and safety critics)."),
    _rl("push_red", "configs/push.yaml", 12000, ["demonstrations.episodes=60"],
        "Push the red cube to a goal (multi-critic SAC: task, interaction, safety; replay seeded with expert episodes)."),
    _rl("pick_and_lift_red", "configs/pick_and_lift.yaml", 6000, ["n_envs=1", "vec_env=dummy", "demonstrations.episodes=60"],
        "Pick the red cube and carry it to a goal (multi-critic SAC; replay seeded with expert episodes)."),
    Recipe("distilled", "skill", "Long-horizon skills distilled from the scripted teachers by behaviour cloning "
           "(planning.distill): what stack-two and stack-three are composed from.", "planning.distill_skills",
           {"tasks": ["stack-two", "stack-three"], "episodes_per_task": 120, "epochs": 120, "seed": 0, "grid": 2,
            "min_executions": 5,
            # joint: the layout the ROS 2 bridge's plan mode feeds (it has no tcp layout yet) and the video skills read
            "obs_layout": "joint",
            "episodes_per_cell": 2, "eval_tasks": ["stack-three"], "eval_episodes": 20}, _build_distilled),
    Recipe("segmenter", "segmenter", "The default segmenter: action predictor, inverse-dynamics model and the rules "
           "chosen on validation (front camera, so a plain one-camera mp4 segments with it).",
           "segmentation.api.train_segmenter",
           {"tasks": ["skillstack/PandaPickPlace-v0", "skillstack/PandaPush-v0"], "episodes_per_task": 80, "demo_seed": 0,
            "cameras": ["front"], "image_size": 64, "epochs": 20, "seed": 0, "fresh_episodes": 10}, _build_segmenter),
    Recipe("video_skills", "skill", "Skills discovered in video by the default segmenter (actions labelled by its "
           "inverse dynamics, never the recorded ones), behaviour-cloned per skill type (zoo.discover).",
           "zoo.discover", {"tasks": ["skillstack/PandaPickPlace-v0"], "episodes_per_task": 40, "demo_seed": 3000,
                            "seed": 0, "bc_epochs": 100, "grid": 2, "episodes_per_cell": 2, "eval_tasks": ["pick-place"],
                            "eval_episodes": 10}, _build_video_skills, needs=("segmenter",)),
]}
