"""The one way a trained network becomes a library skill: ``publish_skill``.

Save the package, verify it (load it back: hashes, manifest, weights), evaluate its
descriptors and store them in the manifest, then add it to a library. Training runs
(``publish_run``, ``train_and_publish``), distillation (``planning.distill``) and skill
boundary detection (``segmentation.skills``) all publish through it.

Training lives a layer below and does no library I/O: a finished run hands over its policy
as plain networks (``policies.training.load_trained_run``) and ``publish_run`` publishes them::

    from skill_library.publish import train_and_publish
    run = train_and_publish("configs/reach.yaml", ["total_timesteps=2000"])   # train, then publish_run(run)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skill_library.authoring import new_provenance, save_network_skill, specs_from_exported_actor
from skill_library.descriptors import attach_descriptors, evaluate_skill
from skill_library.embodiments import check_record, with_check
from skill_library.manifest import ActionSpec, Manifest, ObservationSpec, Provenance
from skill_library.package import rewrite_manifest
from skill_library.registry import SkillEntry, SkillLibrary
from skill_library.skill import load_skill

__all__ = ["DescriptorSettings", "PublishedSkill", "publish_run", "publish_skill", "train_and_publish"]

LibraryLike = SkillLibrary | str | os.PathLike[str] | None


@dataclass(frozen=True)
class DescriptorSettings:
    """How ``publish_skill`` evaluates descriptors (``skill_library.evaluate_skill`` arguments)."""

    grid: int | Sequence[int] = 2
    episodes_per_cell: int = 2
    seed: int = 0
    max_steps: int | None = None
    setup_steps: int | None = None


@dataclass(frozen=True)
class PublishedSkill:
    """What ``publish_skill`` made: the package it wrote, its final manifest, the descriptors
    (``None`` when not evaluated) and the library entry (``None`` when not added)."""

    path: Path
    manifest: Manifest
    descriptors: dict[str, Any] | None
    entry: SkillEntry | None

    @property
    def ref(self) -> str:
        """``name@version``."""
        return self.manifest.ref

    @property
    def success_rate(self) -> float | None:
        """The skill's own success over its descriptor grid (``None`` when not evaluated)."""
        return None if self.descriptors is None else float(self.descriptors["totals"]["success_rate"])


def publish_skill(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    kind: str,
    env: Any,
    arch: Mapping[str, Any],
    state_dict: Mapping[str, Any],
    observation: ObservationSpec | None = None,
    action: ActionSpec | None = None,
    description: str = "",
    tags: Sequence[str] = (),
    preconditions: Sequence[str] = (),
    effects: Sequence[str] = (),
    provenance: Provenance | None = None,
    descriptors: DescriptorSettings | None = None,
    library: LibraryLike = None,
    add_to_library: bool = True,
) -> PublishedSkill:
    """Publish a network trained on ``env`` as an ``rl`` or ``bc`` skill.

    Writes the package to ``out_dir`` (replacing one there), loads it back to verify it,
    evaluates descriptors when ``descriptors`` is given (stored in the manifest), and adds it
    to ``library`` (a ``SkillLibrary``, its path, or ``None`` for the default library:
    ``$SKILLSTACK_LIBRARY`` or ``~/.skillstack/skills``), replacing the same name@version,
    unless ``add_to_library`` is false. An error while evaluating (e.g. ``SkillSetupError``:
    the preconditions could not be set up) propagates and nothing is added.
    """
    manifest = save_network_skill(
        out_dir, name=name, version=version, kind=kind, env=env, arch=arch, state_dict=state_dict,
        observation=observation, action=action, description=description, tags=tags,
        preconditions=preconditions, effects=effects, provenance=provenance, overwrite=True,
    )  # fmt: skip
    skill = load_skill(out_dir)  # verify: the bytes on disk hash right and the network loads
    desc = None
    if descriptors is not None:
        desc = evaluate_skill(skill, grid=descriptors.grid, episodes_per_cell=descriptors.episodes_per_cell,
                              seed=descriptors.seed, max_steps=descriptors.max_steps,
                              setup_steps=descriptors.setup_steps)
        manifest = rewrite_manifest(out_dir, with_check(attach_descriptors(skill.manifest, desc), check_record(desc)))
    entry = None
    if add_to_library:
        lib = library if isinstance(library, SkillLibrary) else SkillLibrary(library)
        entry = lib.add(out_dir, force=True)
    return PublishedSkill(Path(out_dir), manifest, desc, entry)


def publish_run(run_dir: str | os.PathLike[str], command: str | None = None) -> list[dict[str, Any]]:
    """Publish a finished training run's policy as skill package(s), as its ``export`` config says.

    One package per trained network (one per skill z for skill discovery) in
    ``<run_dir>/skills/<name>/``, with provenance (command, config, seed, env steps, final
    evaluation) and descriptors; each added to ``export.library`` unless
    ``export.add_to_library`` is false. The records (name, version, path, library path) are
    stored under ``skills`` in the run's ``summary.json`` and returned.
    """
    import envs
    from policies.training import load_trained_run, read_summary
    from policies.training.run_files import write_summary

    run = load_trained_run(run_dir)
    cfg, exp = run.config, run.config.export
    settings = None if exp.descriptors is None else DescriptorSettings(
        exp.descriptors.grid, exp.descriptors.episodes_per_cell, seed=cfg.seed)
    description = exp.description or f"{cfg.algo} policy trained by skillstack ({cfg.experiment})"
    env = envs.make(cfg.env_id, **cfg.env_make_kwargs)
    records = []
    try:
        for policy in run.policies:
            observation, action = specs_from_exported_actor(policy.network, env)
            published = publish_skill(
                run.run_dir / "skills" / policy.name, name=policy.name, version=exp.version, kind="rl", env=env,
                arch=policy.network.arch, state_dict=policy.network.state_dict, observation=observation,
                action=action, description=description,
                tags=("rl", cfg.algo) + (("skill_discovery",) if policy.skill is not None else ()),
                preconditions=exp.preconditions, effects=exp.effects,
                provenance=new_provenance(command=command, config=cfg.to_dict(), seed=cfg.seed,
                                          env_steps=run.env_steps, eval=policy.eval),
                descriptors=settings, library=exp.library, add_to_library=exp.add_to_library,
            )  # fmt: skip
            record = {"name": policy.name, "version": exp.version, "path": str(published.path)}
            if published.entry is not None:
                record["library"] = str(published.entry.path)
            records.append(record)
    finally:
        env.close()
    write_summary(run.run_dir, {**read_summary(run.run_dir), "skills": records})
    return records


def train_and_publish(
    config: Any,
    overrides: Sequence[str] = (),
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    export: bool | None = None,
    command: str | None = None,
    stop_after: int | None = None,
) -> Path:
    """``policies.training.train``, then ``publish_run`` once the run has finished, unless
    ``export`` (default: the config's ``export.enabled``) is false. What ``skillstack train`` runs."""
    from policies.training import load_config, train
    from policies.training.run_files import SUMMARY_FILE

    run = train(config, overrides, run_dir=run_dir, resume=resume, progress=progress, stop_after=stop_after)
    finished = (run / SUMMARY_FILE).is_file()
    if finished and (load_config(run).export.enabled if export is None else export):
        publish_run(run, command=command)
    return run
