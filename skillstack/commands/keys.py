"""`skillstack keys ...`: signing keys and the trust store (thin layer over `skill_library.keyring`)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keys",
        help="signing keys and trusted keys (generate, list, export, trust, revoke, sign)",
        description="Ed25519 keys that sign skill packages, and the keys you trust. Your packages are signed with "
        "your default key (generated on first use); `skills add` accepts packages signed by keys you trust. "
        "Key ring: --keys, else $SKILLSTACK_KEYS, else ~/.skillstack/keys.",
    )
    p.add_argument("--keys", default=None, help="key ring directory (default: $SKILLSTACK_KEYS or ~/.skillstack/keys)")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION")

    gp = ksub.add_parser("generate", help="create a signing key (and make it your default)", description="Create an Ed25519 key pair in the key ring (private key 0600), trust it, and make it the key that signs your packages.")
    gp.add_argument("--name", default=None, help="a name others will see with the key (default: USER@HOST)")
    gp.add_argument("--no-default", action="store_true", help="keep the current default signing key")
    gp.set_defaults(func=_generate)

    lp = ksub.add_parser("list", help="your keys and the keys you trust or revoked", description="List the keys you hold and every key in your trust store (the project key included).")
    lp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lp.set_defaults(func=_list)

    xp = ksub.add_parser("export", help="print or write a public key file to share", description="Write the public half of a key you hold (default: your default key) as a .pub file others can trust.")
    xp.add_argument("key_id", nargs="?", default=None, metavar="KEY_ID", help="key to export (default: your default key)")
    xp.add_argument("--out", default=None, metavar="FILE", help="write to FILE instead of standard output")
    xp.set_defaults(func=_export)

    tp = ksub.add_parser("trust", help="trust a public key file", description="Trust the key in a .pub file (from `skillstack keys export`): packages it signs can then be added. Check the key id with its owner first.")
    tp.add_argument("file", metavar="FILE")
    tp.set_defaults(func=_trust)

    rp = ksub.add_parser("revoke", help="revoke a key: its packages no longer add or load", description="Revoke a key you know (held, trusted or the project key): every package it signed is refused on add and on load, with a clear error.")
    rp.add_argument("key_id", metavar="KEY_ID")
    rp.add_argument("--reason", default="", help="why (recorded in the trust store and audit log)")
    rp.set_defaults(func=_revoke)

    dp = ksub.add_parser("default", help="choose which of your keys signs your packages", description="Make a key you hold the default signing key.")
    dp.add_argument("key_id", metavar="KEY_ID")
    dp.set_defaults(func=_default)

    sp = ksub.add_parser("sign", help="sign (or re-sign) a package directory with your key", description="Sign a skill package you made or checked (e.g. one written before packages were signed) with your default key, in place. Its files must be intact.")
    sp.add_argument("path", metavar="PACKAGE_DIR")
    sp.set_defaults(func=_sign)

    ap = ksub.add_parser("audit", help="show the key ring's audit log", description="Print key generation, trust and revocation records after checking the log's hash chain.")
    ap.add_argument("--json", action="store_true", help="print JSON records")
    ap.set_defaults(func=_audit)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _ring(args: argparse.Namespace) -> Any:
    from skill_library.keyring import Keyring

    return Keyring(args.keys)


def _generate(args: argparse.Namespace) -> int:
    ring = _ring(args)
    key = ring.generate(args.name, make_default=not args.no_default)
    print(f"generated key {key.key_id} ({key.name}) in {ring.root}" + ("" if args.no_default else "; it now signs your packages"))
    print(f"share its public half: skillstack keys export {key.key_id} --out {key.name}.pub")
    return 0


def _list(args: argparse.Namespace) -> int:
    from common.table import print_table

    ring = _ring(args)
    held, default = set(ring.own_key_ids()), ring.default_key_id()
    entries = ring.entries()
    rows = []
    for kid in sorted(set(entries) | held):
        e = entries.get(kid)
        name = e.key.name if e else ring.public_key(kid).name
        rows.append({"key_id": kid, "name": name, "state": e.state if e else "untrusted", "since": e.since if e else "",
                     "source": e.source if e else "", "private_key": kid in held, "default": kid == default,
                     "reason": e.reason if e else ""})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print_table(
        ["KEY ID", "NAME", "STATE", "SINCE", "SOURCE", "YOURS"],
        [[r["key_id"], r["name"], r["state"] + (f" ({r['reason']})" if r["reason"] else ""), r["since"] or "-", r["source"],
          ("default" if r["default"] else "yes") if r["private_key"] else "-"] for r in rows],
    )  # fmt: skip
    if default is None:
        print("you have no signing key yet: one is generated when you first write a package (or: skillstack keys generate)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from common.atomic import atomic_write_bytes

    ring = _ring(args)
    kid = args.key_id or ring.default_key_id()
    if kid is None:
        raise ValueError(f"no signing key in {ring.root}; create one: skillstack keys generate")
    data = ring.public_key(kid).to_file_bytes()
    if args.out:
        atomic_write_bytes(args.out, data)
        print(f"wrote public key {kid} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("ascii"))
    return 0


def _trust(args: argparse.Namespace) -> int:
    from skill_library.keyring import read_public_key_file

    key = read_public_key_file(args.file)
    entry = _ring(args).trust(key, source=f"file:{args.file}")
    print(f"trusted key {key.key_id} ({key.name}) since {entry.since or '-'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    entry = _ring(args).revoke(args.key_id, args.reason)
    print(f"revoked key {entry.key.key_id} ({entry.key.name}): packages it signed can no longer be added or loaded")
    return 0


def _default(args: argparse.Namespace) -> int:
    key = _ring(args).set_default(args.key_id)
    print(f"key {key.key_id} ({key.name}) now signs your packages")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from skill_library.package import sign_package

    key = _ring(args).default_key()
    m = sign_package(args.path, key)
    print(f"signed {m.ref} at {args.path} with key {key.key_id} ({key.name})")
    return 0


def print_audit(path: Any, as_json: bool) -> int:
    """Print an audit log (hash chain checked first); shared with `skillstack skills audit`."""
    from common.table import print_table
    from skill_library.audit import read_audit

    records = read_audit(path)
    if as_json:
        print(json.dumps(records, indent=2))
        return 0
    if not records:
        print(f"no records in {path}")
        return 0
    rows = []
    for r in records:
        d = r.get("details", {})
        what = d.get("ref") or d.get("key_id") or d.get("source") or ""
        extra = d.get("reason") or ",".join(d.get("overrides") or []) or ""
        rows.append([r["seq"], r["time"], r["op"], what, r["user"], (r.get("key_id") or "-")[:12], str(extra)[:80]])
    print_table(["#", "TIME", "OP", "WHAT", "USER", "USER KEY", "NOTE"], rows)
    head = hashlib.sha256(Path(path).read_bytes().splitlines()[-1]).hexdigest()
    print(f"{len(records)} record(s); hash chain intact ({path}); head {head} (keep it elsewhere to detect a rewritten tail)")
    return 0


def _audit(args: argparse.Namespace) -> int:
    return print_audit(_ring(args).audit_path, args.json)
