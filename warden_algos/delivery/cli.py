"""``warden-algos release ...`` and ``warden-algos pull``: the delivery commands.

Everything CI's workflow does goes through these, so every step of a production release can be
run, and is tested, on a laptop against an S3-compatible server.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # imported when a command runs: every other command starts without them
    from warden_algos.executable.manifest import Manifest

    from .records import Move
    from .signing import TrustedKeys
    from .store import ReleaseStore


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with a [release] table")
    parser.add_argument("--bucket", help="S3 bucket (or WARDEN_RELEASE_BUCKET)")
    parser.add_argument("--prefix", help="key prefix (or WARDEN_RELEASE_PREFIX)")
    parser.add_argument(
        "--endpoint-url", help="S3-compatible endpoint (or WARDEN_RELEASE_ENDPOINT_URL)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_delivery_parsers(commands: Any) -> None:
    release = commands.add_parser(
        "release",
        help="publish an artifact, move channels, read the history",
        description="Immutable releases and movable channels in S3. Credentials come from the "
        "standard AWS chain, never from flags or files.",
    )
    actions = release.add_subparsers(dest="action", required=True)
    publish = actions.add_parser("publish", help="upload an artifact and its manifest, once")
    publish.add_argument("--artifact", type=Path, required=True)
    publish.add_argument(
        "--manifest", type=Path, help="default: the .manifest.json beside the artifact"
    )
    publish.add_argument("--release-id", help="default: <version>+<git commit>")
    for name, helptext in (
        ("promote", "point a channel at a release"),
        ("rollback", "point a channel back at its previous release"),
    ):
        move = actions.add_parser(name, help=helptext)
        move.add_argument("--channel", required=True, help="prod, staging, test/<name>, ...")
        if name == "promote":
            move.add_argument("--release", required=True, dest="release_id")
        else:
            move.add_argument("--to", dest="release_id", help="default: the previous release")
        move.add_argument("--why", required=True, help="recorded in the channel's history")
    history = actions.add_parser("history", help="every move of a channel, oldest first")
    history.add_argument("--channel", required=True)
    actions.add_parser("list", help="releases and channels")
    presign = actions.add_parser(
        "presign", help="a time-limited download URL for what a channel points to"
    )
    presign.add_argument("--channel", required=True)
    presign.add_argument("--expires-s", type=int, default=900)
    presign.add_argument(
        "--properties",
        action="store_true",
        help="key=value lines (java.util.Properties) instead of text or JSON",
    )
    ship = actions.add_parser(
        "ship", help="publish (no-op if already published) and promote, in one step (CI)"
    )
    ship.add_argument("--artifact", type=Path, required=True)
    ship.add_argument("--manifest", type=Path)
    ship.add_argument("--release-id")
    ship.add_argument("--channel", required=True)
    ship.add_argument("--why", required=True)
    ship.add_argument(
        "--allow-older",
        action="store_true",
        help="move the channel even to a release published before the one it runs",
    )
    sign = actions.add_parser(
        "sign",
        help="sign a published release with the release key (another key's signature is kept)",
    )
    sign.add_argument("--release", required=True, dest="release_id")
    refresh = actions.add_parser(
        "refresh",
        help="re-sign what a channel runs with a new sequence and expiry (an idle channel)",
    )
    refresh.add_argument("--channel", required=True)
    refresh.add_argument("--why", required=True, help="recorded in the channel's history")
    verify = actions.add_parser(
        "verify",
        help="check a channel as a node pinning these keys would, without installing",
    )
    verify.add_argument("--channel", required=True)
    for parser in (publish, ship, actions.choices["promote"], actions.choices["rollback"]):
        parser.add_argument(
            "--require-signing",
            action="store_true",
            help="fail unless a release key is configured (what CI passes)",
        )
    for parser in (ship, actions.choices["promote"], actions.choices["rollback"], refresh):
        parser.add_argument(
            "--expires-days",
            type=float,
            default=None,
            help="how long the signed channel statement stays valid (default: 30)",
        )
    for parser in (*actions.choices.values(),):
        parser.add_argument(
            "--trusted-keys",
            type=Path,
            help="pinned release keys (JSON; or WARDEN_TRUSTED_KEYS): what verify checks "
            "against, and older keys a signer still accepts release signatures from",
        )
    for parser in actions.choices.values():
        _add_location(parser)

    deploy = commands.add_parser(
        "test-deploy",
        help="build, verify, publish to your test channel, wait for every test node to run it",
        description="One command from a working tree to a test cluster running it (see "
        "warden_algos.delivery.cluster for the cluster file).",
    )
    deploy.add_argument("--cluster", type=Path, required=True, help="cluster TOML file")
    deploy.add_argument("--artifact", type=Path, help="ship this onedir tarball, don't build")
    deploy.add_argument("--skip-verify", action="store_true", help="trust the artifact as is")
    deploy.add_argument("--json", action="store_true", help="machine-readable result")

    node = commands.add_parser(
        "node",
        help="run a node agent: serve workers of a channel's release, swapped on every pull",
    )
    node.add_argument("--channel", required=True)
    node.add_argument("--dest", type=Path, required=True, help="install folder (see pull)")
    node.add_argument("--listen", default="127.0.0.1:8701", help="host:port for HTTP")
    node.add_argument("--workers", type=int, default=2)
    node.add_argument("--poll-s", type=float, default=5.0)

    def node_timeout(text: str) -> float | None:
        if text.strip().lower() == "none":
            return None
        return node_positive(text)

    def node_positive(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
        return value

    node.add_argument(
        "--timeout-s",
        type=node_timeout,
        default=60.0,
        help="per-request time limit, passed to every worker; 'none' for no limit (default: 60)",
    )
    node.add_argument(
        "--queue-wait-s",
        type=node_positive,
        default=10.0,
        help="how long a request waits for a free worker before a 503 (default: 10)",
    )
    node.add_argument(
        "--max-body-mb",
        type=node_positive,
        default=64.0,
        help="largest request body accepted, in MiB; larger ones get 413 unread (default: 64)",
    )
    node.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also accept this Host header (repeatable; the listen address and localhost "
        "always are): e.g. the name clients use when --listen is not loopback",
    )
    node.add_argument(
        "--token-file",
        type=Path,
        help="require 'Authorization: Bearer TOKEN' on every request, TOKEN read from this file",
    )
    _add_trusted_keys(node)
    _add_location(node)

    pull = commands.add_parser(
        "pull",
        help="install what a channel points to into a folder (no-op when current)",
        description="Download, verify (size, sha256), unpack and atomically switch DEST/current "
        "to the channel's release, keeping the previous one; --rollback swaps back locally.",
    )
    pull.add_argument("--channel", help="required unless --rollback")
    pull.add_argument("--dest", type=Path, required=True)
    pull.add_argument("--retries", type=int, default=5)
    pull.add_argument("--rollback", action="store_true", help="swap current and previous")
    _add_trusted_keys(pull)
    _add_location(pull)

    from .keys import add_keys_parser

    add_keys_parser(commands)


def _add_trusted_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trusted-keys",
        type=Path,
        help="pinned release keys (JSON, see deploy/trusted-keys.example.json; or "
        "WARDEN_TRUSTED_KEYS): install only releases they signed",
    )


def _trust(args: argparse.Namespace) -> TrustedKeys | None:
    from .signing import trusted_keys_from

    return trusted_keys_from(getattr(args, "trusted_keys", None))


UNPINNED_WARNING = (
    "no pinned release keys (--trusted-keys or WARDEN_TRUSTED_KEYS): releases are installed "
    "unsigned, so anyone who can write to the bucket can run code on this node"
)


def _store(args: argparse.Namespace, *, signing: bool = False) -> ReleaseStore:
    """The release store; with ``signing``, signing with the release key if one is configured
    (required with --require-signing)."""
    from .config import ReleaseConfig
    from .signing import signer_from_environment
    from .store import ReleaseStore

    config = ReleaseConfig.load(
        args.config, bucket=args.bucket, prefix=args.prefix, endpoint_url=args.endpoint_url
    )
    signer = signer_from_environment() if signing else None
    store = ReleaseStore(
        config.client(),
        config.bucket,
        config.prefix,
        signer=signer,
        signer_trusts=_trust(args) if signer is not None else None,
        statement_days=getattr(args, "expires_days", None),
    )
    action = getattr(args, "action", None)
    if getattr(args, "require_signing", False) or action in ("sign", "refresh"):
        store._require_signer(f"release {action}")
    return store


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(text)


def _s3_errors() -> tuple[type[Exception], ...]:
    """boto3's own failures (no credentials, no such bucket, access denied, unreachable
    endpoint): reported in one line like ours, never as a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def _failures(*ours: type[Exception]) -> tuple[type[Exception], ...]:
    return (*ours, *_s3_errors())


def run_release(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .store import ReleaseError

    try:
        return _release(args)
    except _failures(ConfigError, ReleaseError) as error:
        print(f"warden-algos release {args.action}: {error}", file=sys.stderr)
        return 1


def _release(args: argparse.Namespace) -> int:
    return _ACTIONS[args.action](args, _store(args, signing=args.action in _SIGNING_ACTIONS))


#: The actions that write records: they sign them when a release key is configured.
_SIGNING_ACTIONS = frozenset({"publish", "ship", "promote", "rollback", "sign", "refresh"})


def _manifest_of(args: argparse.Namespace) -> Manifest:
    from warden_algos.executable.manifest import Manifest

    from .store import ReleaseError, parse_record

    manifest_path = args.manifest or args.artifact.with_name(args.artifact.name + ".manifest.json")
    try:
        raw = manifest_path.read_bytes()
    except OSError as error:
        raise ReleaseError(f"cannot read the manifest {manifest_path}: {error}") from None
    return parse_record(Manifest, raw, str(manifest_path))


def _publish(args: argparse.Namespace, store: ReleaseStore) -> int:
    release, created = store.publish(args.artifact, _manifest_of(args), args.release_id)
    verb = "published" if created else "already published (same bytes)"
    _emit(
        args,
        {"created": created, **release.model_dump()},
        f"{verb}: {release.release_id} ({release.manifest.sha256[:12]}..., "
        f"{release.manifest.size / 1e6:.1f} MB) at s3://{store.bucket}/{release.artifact_key}",
    )
    return 0


def _ship(args: argparse.Namespace, store: ReleaseStore) -> int:
    """Publish, then promote unless the channel already runs it. The store refuses to move the
    channel back to a release published before the one it runs, unless --allow-older."""
    release, created = store.publish(args.artifact, _manifest_of(args), args.release_id)
    stored = store.pointer_or_broken(args.channel)  # a malformed pointer: repaired below
    current = None if stored is None else stored[0]
    if current is not None and current.release_id == release.release_id:
        move = None
        move_text = f"{args.channel} already runs {release.release_id}"
    else:
        move = store.promote(
            args.channel,
            release.release_id,
            args.why,
            allow_older=args.allow_older,
            repair=True,
        )
        move_text = f"{args.channel}: {move.from_release} -> {move.to_release}"
    _emit(
        args,
        {
            "created": created,
            "release": release.model_dump(),
            "move": None if move is None else move.model_dump(),
        },
        f"{release.release_id} ({'published' if created else 'already published'}); " + move_text,
    )
    return 0


def _promote(args: argparse.Namespace, store: ReleaseStore) -> int:
    return _emit_move(args, store.promote(args.channel, args.release_id, args.why))


def _rollback(args: argparse.Namespace, store: ReleaseStore) -> int:
    return _emit_move(args, store.rollback(args.channel, args.why, args.release_id))


def _emit_move(args: argparse.Namespace, move: Move) -> int:
    _emit(
        args,
        move.model_dump(),
        f"{move.channel}: {move.from_release} -> {move.to_release} ({move.action} by "
        f"{move.who}: {move.why})",
    )
    return 0


def _sign(args: argparse.Namespace, store: ReleaseStore) -> int:
    envelope = store.sign_release(args.release_id)
    keyids = [signature.keyid[:12] + "..." for signature in envelope.signatures]
    _emit(
        args,
        envelope.model_dump(),
        f"{args.release_id}: signed by {', '.join(keyids)} at "
        f"s3://{store.bucket}/{store.release_signature_key(args.release_id)}",
    )
    return 0


def _refresh(args: argparse.Namespace, store: ReleaseStore) -> int:
    return _emit_move(args, store.refresh(args.channel, args.why))


def _verify(args: argparse.Namespace, store: ReleaseStore) -> int:
    """What a node pinning ``--trusted-keys`` would conclude, without installing anything."""
    from .errors import ReleaseError
    from .trust import verify_channel, verify_release

    trust = _trust(args)
    if trust is None:
        raise ReleaseError("verify needs the keys to check against: --trusted-keys FILE")
    pointer = store.channel(args.channel)
    if pointer is None:
        raise ReleaseError(f"channel {args.channel!r} does not exist")
    statement = verify_channel(trust, pointer, args.channel)
    found = store.release_bytes(statement.release_id)
    if found is None:
        raise ReleaseError(f"channel {args.channel!r} points to a missing release")
    verify_release(trust, statement, found[1], store.release_signature(statement.release_id))
    _emit(
        args,
        {"status": "verified", **statement.model_dump()},
        f"verified: {args.channel} -> {statement.release_id} (sequence {statement.sequence}, "
        f"signed {statement.signed_at}, expires {statement.expires})",
    )
    return 0


def _history(args: argparse.Namespace, store: ReleaseStore) -> int:
    moves = store.history(args.channel)
    lines = [
        f"{m.when}  {m.action:8}  {m.from_release} -> {m.to_release}  {m.who}: {m.why}"
        for m in moves
    ]
    _emit(args, [m.model_dump() for m in moves], "\n".join(lines) or "(no moves)")
    return 0


def _list(args: argparse.Namespace, store: ReleaseStore) -> int:
    releases, channels = store.releases(), store.channels()
    text = "\n".join(
        [f"release {r.release_id}  {r.manifest.sha256[:12]}  {r.published_at}" for r in releases]
        + [f"channel {c.channel} -> {c.release_id}" for c in channels]
    )
    _emit(
        args,
        {
            "releases": [r.model_dump() for r in releases],
            "channels": [c.model_dump() for c in channels],
        },
        text or "(empty)",
    )
    return 0


def _presign(args: argparse.Namespace, store: ReleaseStore) -> int:
    from .store import ReleaseError

    pointer = store.channel(args.channel)
    if pointer is None:
        raise ReleaseError(f"channel {args.channel!r} does not exist")
    release = store.release(pointer.release_id)
    signature = store.release_signature(pointer.release_id)
    fields = pointer.model_dump(exclude={"statement"})
    payload = {
        **fields,
        # The signed statements, for a JVM puller that pins keys (base64 of the DSSE JSON): it
        # checks them before downloading anything; absent when the release is unsigned.
        "channel_statement": _base64(pointer.statement.dumps()) if pointer.statement else None,
        "release_signature": _base64(signature.dumps()) if signature else None,
        "name": release.manifest.name if release else None,
        "url": store.presign(pointer.artifact_key, args.expires_s),
        "release_url": store.presign(store.release_key(pointer.release_id), args.expires_s),
        "expires_s": args.expires_s,
    }
    if args.properties:
        sys.stdout.write(
            "".join(
                f"{key}={_escape(value)}\n" for key, value in payload.items() if value is not None
            )
        )
        return 0
    _emit(args, payload, payload["url"])
    return 0


#: One function per ``release`` action; each gets the parsed arguments and the store.
_ACTIONS: dict[str, Callable[[argparse.Namespace, ReleaseStore], int]] = {
    "publish": _publish,
    "ship": _ship,
    "promote": _promote,
    "rollback": _rollback,
    "history": _history,
    "list": _list,
    "presign": _presign,
    "sign": _sign,
    "refresh": _refresh,
    "verify": _verify,
}


def run_pull(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .pull import pull, rollback_local
    from .store import ReleaseError

    def log(message: str) -> None:
        print(f"warden-algos pull: {message}", file=sys.stderr)

    try:
        if args.rollback:
            release = rollback_local(args.dest)
            _emit(args, {"status": "rolled back", "release_id": release.release_id}, str(release))
            return 0
        if not args.channel:
            print("warden-algos pull: --channel is required", file=sys.stderr)
            return 2
        trust = _trust(args)
        if trust is None:
            log(f"warning: {UNPINNED_WARNING}")
        result = pull(
            _store(args), args.channel, args.dest, retries=args.retries, trust=trust, log=log
        )
    except _failures(ConfigError, ReleaseError) as error:
        log(f"error: {error}")
        return 1
    _emit(
        args,
        {**result._asdict(), "executable": str(result.executable)},
        f"{result.status}: {result.release_id} ({result.executable})",
    )
    return 0


def _base64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _escape(value: object) -> str:
    """A value as ``java.util.Properties.load`` reads it back: a backslash doubled, a leading
    space escaped, and every character outside printable ASCII (newlines above all: an unescaped
    one would start a new key, e.g. a second ``sha256=``) as ``\\t \\n \\f \\r`` or
    ``\\uXXXX``, as ``Properties.store`` writes them. ``=``, ``:``, ``#`` and ``!`` need no
    escape in a value (they only matter in a key or at the start of a line), so URLs stay
    readable to a plain ``key=value`` split."""
    out = []
    for index, char in enumerate(str(value)):
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif char == " " and index == 0:
            out.append("\\ ")
        elif char in _SPECIAL_ESCAPES:
            out.append(_SPECIAL_ESCAPES[char])
        elif code < 0x20 or code > 0x7E:
            # Java chars are UTF-16 units: characters beyond the BMP become a surrogate pair
            data = char.encode("utf-16-be")
            out.extend(
                f"\\u{int.from_bytes(data[i : i + 2], 'big'):04X}" for i in range(0, len(data), 2)
            )
        else:
            out.append(char)
    return "".join(out)


_SPECIAL_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}


def run_test_deploy(args: argparse.Namespace) -> int:
    from .cluster import run_test_deploy as deploy
    from .config import ConfigError
    from .store import ReleaseError

    def log(message: str) -> None:
        print(f"test-deploy: {message}", file=sys.stderr)

    try:
        result = deploy(
            args.cluster, artifact=args.artifact, verify_build=not args.skip_verify, log=log
        )
    except _failures(ConfigError, ReleaseError) as error:
        log(f"error: {error}")
        return 1
    _emit(
        args,
        result,
        f"{result['channel']} runs {result['release_id']} on {', '.join(result['nodes'])}",
    )
    return 0


def run_node(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .node import NodeAgent
    from .store import ReleaseError

    host, _, port = args.listen.rpartition(":")
    token = None
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            print(f"warden-algos node: cannot read --token-file: {error}", file=sys.stderr)
            return 2
        if not token or any(char.isspace() for char in token):
            print(
                f"warden-algos node: {args.token_file} must hold one token (no spaces)",
                file=sys.stderr,
            )
            return 2
    try:
        trust = _trust(args)
        if trust is None:
            print(f"warden-algos node: warning: {UNPINNED_WARNING}", file=sys.stderr)
        agent = NodeAgent(
            _store(args),
            args.channel,
            args.dest,
            workers=args.workers,
            poll_s=args.poll_s,
            timeout_s=args.timeout_s,
            queue_wait_s=args.queue_wait_s,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            allowed_hosts=args.allow_host,
            token=token,
            trust=trust,
        )
        agent.start()
    except _failures(ConfigError, ReleaseError) as error:
        print(f"warden-algos node: {error}", file=sys.stderr)
        return 1
    server = agent.serve_http(host, int(port))
    print(f"warden-algos node: listening on {host}:{server.server_port}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        agent.stop()
    return 0
