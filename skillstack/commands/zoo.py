"""`skillstack zoo`: the shipped model zoo (docs/zoo.md).

    skillstack zoo list                          # what ships: kind, packages, size, build time, figures
    skillstack zoo install [--library DIR] [--segmenter DIR] [--only NAME ...]   # verify, then install
    skillstack zoo build [--only NAME ...]       # rebuild from scratch with each recipe's seed (maintainers)
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zoo", help="the shipped model zoo: list, install into your library, rebuild",
                       description="Small trained artifacts shipped with skillstack (RL, distilled and video-discovered "
                       "skills, the default segmenter), signed with the project key. See docs/zoo.md.")
    zs = p.add_subparsers(dest="zoo_command", metavar="ACTION")
    ls = zs.add_parser("list", help="what the zoo ships, with sizes and figures")
    ls.add_argument("--json", action="store_true", help="print zoo.yaml as JSON")
    ls.set_defaults(func=run_list)
    ins = zs.add_parser("install", help="verify every artifact against the project key, then install it")
    ins.add_argument("--library", default=None, help="skill library (default: $SKILLSTACK_LIBRARY or ~/.skillstack/skills)")
    ins.add_argument("--segmenter", default=None,
                     help="segmenter folder (default: $SKILLSTACK_SEGMENTER or ~/.skillstack/segmenter)")
    ins.add_argument("--only", nargs="+", default=None, metavar="NAME", help="install only these artifacts")
    ins.set_defaults(func=run_install)
    b = zs.add_parser("build", help="rebuild artifacts from scratch with their recipes and seeds (minutes each)")
    b.add_argument("--only", nargs="+", default=None, metavar="NAME", help="rebuild only these artifacts")
    b.set_defaults(func=run_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    from common.table import print_table
    from zoo.install import zoo_rows
    from zoo.manifest import read_manifest

    manifest = read_manifest()
    if args.json:
        import json

        print(json.dumps(manifest.to_dict(), indent=1))
        return 0
    print_table(["artifact", "kind", "packages", "size", "build (2 cores)", "figures"], zoo_rows())
    signer = manifest.signer
    print(f"total {manifest.total_bytes / 2**20:.2f} MB (budget {manifest.size_budget_mb:.0f} MB); signed by "
          f"{signer.get('name')} {signer.get('key_id')}" + ("" if signer.get("project_key") else " (NOT the project key)"))
    return 0


def run_install(args: argparse.Namespace) -> int:
    from zoo.install import install_zoo

    done = install_zoo(args.library, args.segmenter, names=args.only)
    for name, items in done.items():
        print(f"{name}: {', '.join(items)}")
    print(f"installed {len(done)} zoo artifact(s), every signature checked against the project key")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from zoo.build import build_zoo

    result = build_zoo(args.only, log=lambda msg: print(msg, flush=True))
    times = ", ".join(f"{k} {v / 60:.1f} min" for k, v in result.items() if k != "signed_by")
    print(f"built: {times}")
    return 0
