"""`skillstack skills ...`: manage the skill library (thin layer over `skill_library`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "skills",
        help="manage the skill library (list, show, verify, add, remove, lock, audit, evaluate, export)",
        description="Manage a skill library: a directory of verified skill packages (manifest.json + "
        "weights.safetensors) with an index. Library: --library, else $SKILLSTACK_LIBRARY, else ~/.skillstack/skills.",
    )
    p.add_argument("--library", default=None, help="library directory (default: $SKILLSTACK_LIBRARY or ~/.skillstack/skills)")
    ssub = p.add_subparsers(dest="skills_command", metavar="ACTION")

    lp = ssub.add_parser("list", help="list (and search) skills", description="List skills; filters combine (AND).")
    lp.add_argument("--name", help="name glob or substring")
    lp.add_argument("--tag", help="exact tag")
    lp.add_argument("--embodiment", help="robot model id (or substring, e.g. panda) or arm joint name")
    lp.add_argument("--predicate", help="predicate literal like 'holding(red)' or a bare name like 'holding'")
    lp.add_argument("--where", choices=("any", "precondition", "effect"), default="any", help="where --predicate must occur")
    lp.add_argument("--kind", choices=("rl", "bc", "scripted"), help="skill kind")
    lp.add_argument("--latest", action="store_true", help="only the latest version of each skill")
    lp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lp.set_defaults(func=_list)

    sp = ssub.add_parser("show", help="show one skill's manifest", description="Show a verified skill: specs, predicates, descriptors, provenance, files.")
    sp.add_argument("ref", metavar="NAME[@VERSION]")
    sp.add_argument("--json", action="store_true", help="print the manifest as JSON")
    sp.add_argument("--cells", action="store_true", help="also print the per-cell descriptor table")
    sp.set_defaults(func=_show)

    vp = ssub.add_parser("verify", help="verify a package directory (hashes, manifest, weights)", description="Verify a skill package directory, or NAME[@VERSION] in the library; exit 0 when valid.")
    vp.add_argument("path", metavar="PATH|NAME[@VERSION]")
    vp.set_defaults(func=_verify)

    ap = ssub.add_parser(
        "add", help="verify and add a signed package to the library",
        description="Verify a package (signature first) and copy it into the library. Refused by default: unsigned "
        "packages, packages signed by a key you do not trust (skillstack keys trust), and a new version signed by "
        "another key than the installed versions of the skill (trust on first use); a revoked signer always. The "
        "--allow-* flags accept those with a warning, recorded in the index and the audit log.",
    )  # fmt: skip
    ap.add_argument("path", metavar="PATH")
    ap.add_argument("--force", action="store_true", help="replace an existing NAME@VERSION")
    ap.add_argument("--allow-unsigned", action="store_true", help="accept an unsigned package (warns; recorded)")
    ap.add_argument("--allow-untrusted", action="store_true", help="accept a signer you do not trust (warns; recorded)")
    ap.add_argument("--allow-signer-change", action="store_true",
                    help="accept a version signed by another key than the installed versions (warns; recorded)")
    ap.set_defaults(func=_add)

    kp = ssub.add_parser(
        "lock", help="pin the exact skills a task runs with (a lock file)",
        description="Write a lock file of the exact names, versions, manifest digests and signers of the skills "
        "TASK would run with now (the latest version of each library skill of the chosen kinds), or of --skill refs. "
        "run-task --lock, deploy --lock and the controller on the robot then run exactly those and refuse anything else.",
    )  # fmt: skip
    kp.add_argument("task", metavar="TASK_OR_PLAN", nargs="?", default=None,
                    help="long-horizon task (pick-place, stack-two, ...), env id or YAML spec; omit with --skill")
    kp.add_argument("--skill", action="append", default=None, metavar="NAME[@VERSION]", help="lock these skills (repeatable)")
    kp.add_argument("--kinds", choices=("all", "learned", "scripted"), default="all", help="which library skills (default all)")
    kp.add_argument("--goal", default=None, help="goal overriding the task's (checked, as run-task would)")
    kp.add_argument("--out", default=None, metavar="FILE", help="lock file to write (default: TASK.skills.lock.json)")
    kp.set_defaults(func=_lock)

    up = ssub.add_parser("audit", help="show the library's audit log", description="Print every add, remove, update, refusal and override with who and when, after checking the log's hash chain.")
    up.add_argument("--json", action="store_true", help="print JSON records")
    up.set_defaults(func=_audit)

    rp = ssub.add_parser("remove", help="remove NAME@VERSION (or NAME)", description="Remove a skill version from the library.")
    rp.add_argument("ref", metavar="NAME[@VERSION]")
    rp.add_argument("--all-versions", action="store_true", help="remove every version when only NAME is given")
    rp.set_defaults(func=_remove)

    ep = ssub.add_parser("evaluate", help="compute descriptors over a grid of initial states", description="Roll the skill out in sim over a grid of initial states; store per-cell success rate, mean duration and safety cost (plus totals) in its manifest.")
    ep.add_argument("ref", metavar="NAME[@VERSION]")
    ep.add_argument("--env-id", default=None, help="env id (default: the skill's task env)")
    ep.add_argument("--grid", default="4", help="grid cells: N (NxN) or NXxNY (default 4)")
    ep.add_argument("--episodes-per-cell", type=int, default=4, help="episodes per grid cell (default 4)")
    ep.add_argument("--seed", type=int, default=0, help="evaluation seed (default 0)")
    ep.add_argument("--max-steps", type=int, default=None, help="steps per episode (default: the env's episode length)")
    ep.add_argument("--robot", default=None, help="robot to run on (default: the skill's own); on another robot only a checked_on record is stored")
    ep.add_argument("--conditions", default=None, metavar="A,B,...", help="evaluate under these named conditions "
                    "(or 'all'; envs/conditions.yaml): prints success x condition, stores per-condition results")
    ep.add_argument("--conditions-file", default=None, metavar="YAML", help="more conditions, defined in a YAML file")
    ep.add_argument("--plot", default=None, metavar="OUT.png", help="with --conditions: a PNG of success per condition")
    ep.add_argument("--dry-run", action="store_true", help="print results without writing them to the manifest")
    ep.add_argument("--workers", type=int, default=0,
                    help="split the grid across N Ray workers (needs the cluster extra; same result as serial)")
    ep.add_argument("--address", default=None,
                    help="Ray cluster to join with --workers ('auto' or ray://HOST:PORT; default: start a local one)")
    ep.set_defaults(func=_evaluate)

    xp = ssub.add_parser("export", help="copy a verified package out of the library", description="Copy NAME[@VERSION] out of the library to directory OUT.")
    xp.add_argument("ref", metavar="NAME[@VERSION]")
    xp.add_argument("out", metavar="OUT")
    xp.add_argument("--force", action="store_true", help="replace OUT if it exists")
    xp.set_defaults(func=_export)

    ip = ssub.add_parser("install-starter", help="add the scripted starter skills", description="Package the scripted experts' phases as kind=scripted skills and add them to the library (never presented as learned).")
    ip.add_argument("--names", nargs="*", default=None, help="only these starter skills")
    ip.add_argument("--force", action="store_true", help="reinstall versions already present")
    ip.add_argument("--evaluate", action="store_true", help="compute descriptors before adding (slower)")
    ip.add_argument("--grid", type=int, default=4, help="grid size for --evaluate (default 4)")
    ip.add_argument("--episodes-per-cell", type=int, default=2, help="episodes per cell for --evaluate (default 2)")
    ip.set_defaults(func=_install_starter)

    from planning.distill import DEFAULT_TASKS

    dp = ssub.add_parser(
        "distill", help="learn bc skills from the controller's demonstrations with scripted skills",
        description="Run the hierarchical controller with scripted teacher skills on long-horizon tasks, record each "
        "skill's actions in its own observation layout (DART noise on the executed actions), fit one behaviour-cloning "
        "student per teacher and add it to the library as NAME_bc (kind bc, the teacher's predicates, evaluated "
        "descriptors, demonstration env steps in its provenance).",
    )
    dp.add_argument("--teachers", nargs="*", default=None, metavar="NAME[@VERSION]",
                    help="scripted teacher skills from the library (default: its scripted skills, else the starter skills)")
    dp.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated long-horizon tasks to demonstrate")
    dp.add_argument("--episodes-per-task", type=int, default=300, help="teacher episodes per task (default 300)")
    dp.add_argument("--noise", type=float, default=0.1, help="std of the DART noise on executed translation actions (default 0.1)")
    dp.add_argument("--epochs", type=int, default=200, help="behaviour-cloning epochs per student (default 200)")
    dp.add_argument("--hidden", default="256,256", help="hidden layer sizes (default 256,256)")
    dp.add_argument("--no-evaluate", action="store_true", help="skip the students' descriptors")
    dp.add_argument("--grid", type=int, default=3, help="descriptor grid size (default 3)")
    dp.add_argument("--seed", type=int, default=0)
    dp.add_argument("--obs-layout", choices=("tcp", "joint"), default="tcp",
                    help="the students' observation layout (default tcp: no joint angles, runs on any robot)")
    dp.add_argument("--robots", default="panda", metavar="NAME,...",
                    help="comma-separated robots to record the teachers on, each task's episodes split evenly across them "
                    "(default panda; e.g. panda,ur5e so the students also see UR5e states; `skillstack robots` lists them)")
    dp.add_argument("--json", default=None, metavar="OUT", help="write the students and stats as JSON")
    dp.add_argument("--no-progress", action="store_true", help="no progress bar")
    dp.set_defaults(func=_distill)

    xi = ssub.add_parser("reindex", help="rebuild index.json from the package directories", description="Rebuild the index from verified package directories (recovery).")
    xi.set_defaults(func=_reindex)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _lib(args: argparse.Namespace) -> Any:
    from skill_library.registry import SkillLibrary

    return SkillLibrary(args.library)


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.0f}%"


def empty_library_hint(root: str | os.PathLike[str], library: str | None = None) -> str:
    """What `skills list` prints for a library with no skills: the three ways to get some.

    A newcomer's first `skillstack skills list` meets an empty library, so the answer names
    the exact commands rather than only "no skills". `library` is the --library value the
    user gave, repeated in the commands so they fill the same library.
    """
    skills = f"skillstack skills --library {library}" if library else "skillstack skills"
    train = f"skillstack train configs/reach.yaml --library {library}" if library else "skillstack train configs/reach.yaml"
    width = max(len(skills) + len(" install-starter"), len(train), len(skills) + len(" distill"))
    return "\n".join([
        f"no skills in {root} yet. To get some:",
        f"  {skills + ' install-starter':<{width}}  scripted starter skills (reach, grasp, place, push, stack), in seconds",
        f"  {train:<{width}}  train a Reach skill with multi-critic SAC (8k env steps, 1-2 min)",
        f"  {skills + ' distill':<{width}}  learn bc skills from the scripted ones (about 8 min on 2 cores)",
    ])  # fmt: skip


def _list(args: argparse.Namespace) -> int:
    from common.table import print_table

    lib = _lib(args)
    entries = lib.search(
        name=args.name, tag=args.tag, embodiment=args.embodiment, predicate=args.predicate,
        where=args.where, kind=args.kind, latest_only=args.latest,
    )  # fmt: skip
    empty = not entries and not lib.entries()
    if args.json:
        print(json.dumps([{**e.to_dict(), "trust_now": _trust_now(lib, e)} for e in entries], indent=2))
        if empty:
            print(empty_library_hint(lib.root, args.library), file=sys.stderr)  # stdout stays valid JSON
        return 0
    if empty:
        print(empty_library_hint(lib.root, args.library))
        return 0
    if not entries:
        print(f"no skills in {lib.root} matching the filters")
        return 0
    rows = [
        [e.name, e.version, e.kind, e.env_id.split("/")[-1], ",".join(e.tags) or "-", _pct(e.success_rate),
         " & ".join(e.effects) or "-", _signer(e), _trust_now(lib, e)]
        for e in entries
    ]  # fmt: skip
    print_table(["NAME", "VERSION", "KIND", "ENV", "TAGS", "SUCCESS", "EFFECTS", "SIGNER", "TRUST"], rows)
    return 0


def _signer(e: Any) -> str:
    return "-" if e.signer_key_id is None else f"{e.signer_name} {e.signer_key_id[:8]}"


def _trust_now(lib: Any, e: Any) -> str:
    """The signer's state for this user now (a revocation after the add shows), with the overrides used."""
    if e.trust == "legacy":
        return "legacy (added before signing)"
    state = "unsigned" if e.signer_key_id is None else lib.ring.state(e.signer_key_id)
    overrides = [o for o in e.overrides if o != "unsigned"]
    return state + (f" (allowed: {', '.join(overrides)})" if overrides else " (allowed)" if e.overrides else "")


def _show(args: argparse.Namespace) -> int:
    from common.table import print_table

    lib = _lib(args)
    entry = lib.resolve(args.ref)
    m = lib.manifest(entry.ref)
    if args.json:
        print(json.dumps(m.to_dict(), indent=2, sort_keys=True))
        return 0
    learned = "learned" if m.kind in ("rl", "bc") else "scripted controller (not learned)"
    print(f"{m.ref}  [{m.kind}: {learned}]")
    if m.description:
        print(f"  {m.description}")
    print(f"  path           {entry.path}")
    signer = "unsigned" if m.signer is None else f"{m.signer.name} ({m.signer.key_id}): {_trust_now(lib, entry)}"
    print(f"  signer         {signer}" + (f"; overrides at add: {', '.join(entry.overrides)}" if entry.overrides else ""))
    print(f"  robot          {m.embodiment.robot}  ({m.embodiment.action_mode}; {len(m.embodiment.arm_joint_names)} arm joints)")
    runs_on = "any robot" if m.obs_layout == "tcp" or m.kind == "scripted" else "robots with these arm joints"
    print(f"  layout         {m.obs_layout if m.kind != 'scripted' else 'simulator state'}  (runs on {runs_on})")
    for c in m.embodiment.checked_on:
        print(f"  checked on     {c['robot']}  {c['env_id']}: success {_pct(c['success_rate'])} over {c['episodes']} episodes")
    print(f"  task           {m.task.family}  {m.task.env_id}")
    print(f"  control        {m.control_hz:g} Hz")
    obs = ", ".join(f"{k.name}{list(k.shape)}{'*' if k.mean is not None else ''}" for k in m.observation.keys)
    print(f"  observation    {obs}" + ("  (* normalised)" if any(k.mean is not None for k in m.observation.keys) else ""))
    names = ",".join(m.action.names) if m.action.names else ""
    print(f"  action         {list(m.action.shape)} {m.action.dtype} [{names}]")
    if m.network is not None:
        arch = m.network
        print(f"  network        {arch['type']} {arch.get('in_dim')}->{arch.get('hidden')}->{arch.get('out_dim')} {arch.get('activation')}/{arch.get('output_activation')}")
    if m.controller is not None:
        print(f"  controller     {m.controller.name} {json.dumps(m.controller.params, sort_keys=True)}")
    print(f"  tags           {', '.join(m.tags) or '-'}")
    print(f"  preconditions  {' ; '.join(m.preconditions) or '-'}")
    print(f"  effects        {' ; '.join(m.effects) or '-'}")
    pv = m.provenance
    print(f"  provenance     date={pv.date or '-'} seed={pv.seed} env_steps={pv.env_steps} commit={(pv.source_commit or '-')[:12]}")
    if pv.command:
        print(f"                 command: {pv.command}")
    d = m.descriptors
    if d is None:
        print(f"  descriptors    none (run: skillstack skills evaluate {m.name})")
    else:
        t = d["totals"]
        print(
            f"  descriptors    {d['variable']} grid {'x'.join(str(len(a)) for a in d['axes'])}, {t['episodes']} episodes: "
            f"success {_pct(t['success_rate'])}, duration {t['mean_duration_s']:.2f} s, safety cost {t['mean_safety_cost']:.3f}"
        )
        if args.cells:
            rows = [[",".join(map(str, c["index"])), ",".join(f"{x:.3f}" for x in c["center"]), c["episodes"],
                     _pct(c["success_rate"]), round(c["mean_duration_s"], 3), round(c["mean_safety_cost"], 4)]
                    for c in d["cells"]]  # fmt: skip
            print_table(["CELL", "CENTRE", "EPISODES", "SUCCESS", "DURATION_S", "SAFETY"], rows)
    print("  files")
    for fname, digest in sorted(m.files.items()):
        print(f"    {fname:22s} sha256 {digest}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skill_library.package import read_package

    target = Path(args.path)
    if not target.exists() and "/" not in args.path:
        lib = _lib(args)
        target = lib.resolve(args.path).path
        contents = lib.read(args.path)
    else:
        contents = read_package(target)
    m, sig = contents.manifest, contents.signature
    print(f"OK {m.ref} ({m.kind}) at {target}")
    if sig.signed:
        print(f"  {'signature.json':22s} Ed25519 by {sig.key_id} ({sig.name}), {sig.state}  verified")
    else:
        print(f"  {'signature.json':22s} none: unsigned package (accepted here only as allowed)")
    for fname, digest in sorted(m.files.items()):
        print(f"  {fname:22s} sha256 {digest}  verified")
    print(f"  {'manifest.json':22s} digest {m.source_digest}  verified")
    return 0


def _add(args: argparse.Namespace) -> int:
    import warnings

    from skill_library.errors import SkillTrustWarning

    lib = _lib(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkillTrustWarning)
        entry = lib.add(args.path, force=args.force, allow_unsigned=args.allow_unsigned,
                        allow_untrusted=args.allow_untrusted, allow_signer_change=args.allow_signer_change)  # fmt: skip
    for w in caught:
        print(f"skillstack skills: warning: {w.message}", file=sys.stderr)
    signer = "unsigned" if entry.signer_key_id is None else f"signed by {entry.signer_name} ({entry.signer_key_id}, {entry.trust})"
    print(f"added {entry.ref} ({entry.kind}, {signer}) to {lib.root}")
    return 0


def _lock(args: argparse.Namespace) -> int:
    from pathlib import Path

    from planning.executor import LEARNED_KINDS
    from planning.spec import resolve_task
    from skill_library.lockfile import lock_skills, write_lock

    lib = _lib(args)
    task = None if args.task is None else resolve_task(args.task, args.goal).name
    if args.skill:
        refs = list(args.skill)
    elif task is None:
        raise ValueError("give TASK_OR_PLAN, or --skill NAME[@VERSION] (repeatable)")
    else:  # what run-task loads: the latest version of each library skill of the kinds
        keep = {"all": lambda e: True, "learned": lambda e: e.kind in LEARNED_KINDS, "scripted": lambda e: e.kind == "scripted"}
        refs = [e.ref for e in lib.search(latest_only=True) if keep[args.kinds](e)]
    lock = lock_skills(lib, refs, task=task, kinds=args.kinds)
    default = f"{(task or 'skills').replace('/', '_').replace(' ', '_')}.skills.lock.json"
    out = write_lock(lock, Path(args.out or default))
    print(f"locked {len(lock.skills)} skill(s) for {task or 'the given skills'} in {out}: {', '.join(s.ref for s in lock.skills)}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from skillstack.commands.keys import print_audit

    return print_audit(_lib(args).audit_path, args.json)


def _remove(args: argparse.Namespace) -> int:
    lib = _lib(args)
    for ref in lib.remove(args.ref, all_versions=args.all_versions):
        print(f"removed {ref}")
    return 0


def _parse_grid(text: str) -> Any:
    parts = text.lower().replace("*", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--grid must be N or NXxNY, got {text!r}") from None
    if len(dims) == 1:
        return dims[0]
    if len(dims) == 2:
        return tuple(dims)
    raise ValueError(f"--grid must be N or NXxNY, got {text!r}")


def _evaluate(args: argparse.Namespace) -> int:
    from skill_library.descriptors import attach_descriptors, evaluate_skill
    from skill_library.embodiments import check_record, robot_env_kwargs, with_check

    lib = _lib(args)
    if args.conditions:
        from skillstack.commands.skills_conditions import evaluate_conditions_command

        return evaluate_conditions_command(args, lib, _parse_grid(args.grid))
    entry = lib.resolve(args.ref)
    skill = lib.load(entry.ref)
    if args.workers:
        if args.robot is not None:
            print("error: --robot runs in this process; drop --workers", file=sys.stderr)
            return 2
        from skill_library.distributed import evaluate_skill_distributed

        desc = evaluate_skill_distributed(
            entry.path, workers=args.workers, address=args.address, env_id=args.env_id, grid=_parse_grid(args.grid),
            episodes_per_cell=args.episodes_per_cell, seed=args.seed, max_steps=args.max_steps,
        )  # fmt: skip
    else:
        desc = evaluate_skill(
            skill, env_id=args.env_id, grid=_parse_grid(args.grid), episodes_per_cell=args.episodes_per_cell,
            seed=args.seed, max_steps=args.max_steps, env_kwargs=robot_env_kwargs(skill.manifest, args.robot),
        )  # fmt: skip
    t = desc["totals"]
    record = check_record(desc)
    print(
        f"{entry.ref} on {desc['env_id']} ({record['robot']}): {len(desc['cells'])} cells x {desc['episodes_per_cell']} episodes: "
        f"success {_pct(t['success_rate'])}, mean duration {t['mean_duration_s']:.2f} s, safety cost {t['mean_safety_cost']:.3f}"
    )
    if args.dry_run:
        print("dry run: manifest unchanged")
        return 0
    home = record["robot"] == skill.manifest.embodiment.robot
    lib.update_manifest(entry.ref, with_check(attach_descriptors(skill.manifest, desc) if home else skill.manifest, record))
    print(f"{'descriptors and ' if home else ''}checked_on record stored in {entry.path / 'manifest.json'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    out = _lib(args).export(args.ref, args.out, overwrite=args.force)
    print(f"exported {args.ref} to {out}")
    return 0


def _install_starter(args: argparse.Namespace) -> int:
    from skill_library.starter import build_starter_skills

    lib = _lib(args)
    added = build_starter_skills(
        lib, args.names, force=args.force, evaluate=args.evaluate, grid=args.grid, episodes_per_cell=args.episodes_per_cell
    )
    if added:
        print(f"added {len(added)} scripted starter skill(s) to {lib.root}: {', '.join(added)}")
    else:
        print(f"starter skills already installed in {lib.root} (use --force to reinstall)")
    return 0


def _distill(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from planning.distill import DistillConfig, distill_skills
    from planning.executor import load_library_skills
    from skill_library.registry import SkillLibrary
    from skill_library.starter import build_starter_skills
    from common.table import print_table

    lib = _lib(args)
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    cfg = DistillConfig(tasks=tuple(t for t in args.tasks.split(",") if t), episodes_per_task=args.episodes_per_task,
                        action_noise=args.noise, epochs=args.epochs, hidden=hidden, evaluate=not args.no_evaluate,
                        grid=args.grid, seed=args.seed, obs_layout=args.obs_layout,
                        robots=tuple(r for r in args.robots.split(",") if r))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="skillstack-teachers-") as tmp:
        if args.teachers:
            teachers = [lib.load(ref) for ref in args.teachers]
        else:
            have = [e for e in lib.search(latest_only=True) if e.kind == "scripted"]
            source = lib if have else SkillLibrary(Path(tmp) / "starter")
            if not have:
                build_starter_skills(source)
            teachers = load_library_skills(source, "scripted")
        learned = [t.ref for t in teachers if t.kind != "scripted"]
        if learned:
            raise ValueError(f"teachers must be scripted skills; learned: {learned}")
        bar = None
        if not args.no_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(cfg.tasks) * cfg.episodes_per_task, desc="teacher episodes", unit="ep")
        students, stats = distill_skills(teachers, lib, cfg, log=print, progress=(lambda *_: bar.update(1)) if bar else None)
        if bar:
            bar.close()
    print_table(
        ["student", "teacher", "executions", "steps", "bc mse", "own success"],
        [[s.ref, s.teacher, s.executions, s.steps, f"{s.bc_mse:.4f}", "-" if s.success_rate is None else _pct(s.success_rate)]
         for s in students],
    )  # fmt: skip
    rates = []
    for task, v in stats["tasks"].items():
        by_robot = ", ".join(f"{r} {_pct(rv['teacher_success_rate'])}" for r, rv in v["robots"].items())
        rates.append(f"{task} {_pct(v['teacher_success_rate'])}" + (f" ({by_robot})" if len(v["robots"]) > 1 else ""))
    teach = ", ".join(rates)
    print(f"{stats['env_steps']} demonstration env steps in {stats['collect_seconds']:.0f} s (teacher success: {teach}); "
          f"total {stats['seconds']:.0f} s; students added to {lib.root}")  # fmt: skip
    if args.json:
        from dataclasses import asdict

        from common.atomic import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps({"students": [asdict(s) for s in students], "stats": stats}, indent=2).encode())
    return 0


def _reindex(args: argparse.Namespace) -> int:
    lib = _lib(args)
    refs = lib.reindex()
    print(f"indexed {len(refs)} skill version(s) in {lib.root}")
    return 0
