"""``healthledger credentials verify-code``: verify a health code's QR offline, with the
CDC's published keys; an old screenshot is EXPIRED."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.text import Text

from healthledger.appkit.qr_image import UnreadableImage, looks_like_image, qr_texts
from healthledger.apps.credentials.healthcode_qr import CodeVerdict, verify_code
from healthledger.cli.reporting import EXIT_FAILED, EXIT_UNUSABLE, CliError, reported, stdout

MAX_INPUT_BYTES = 8 * 1024 * 1024
STYLES = {"green": "bold green", "yellow": "bold yellow", "red": "bold red"}


def _read(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise CliError(f"{path} is larger than {MAX_INPUT_BYTES // 2**20} MB", EXIT_UNUSABLE)
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}", EXIT_UNUSABLE) from None


def code_text(item: str) -> str:
    """The code's text: ``item`` itself, a file holding it, or a QR image of it."""
    path = Path(item)
    try:
        is_file = len(item) < 4096 and path.is_file()
    except OSError:
        is_file = False
    if not is_file:
        if item.count(".") != 2 and ("/" in item or item.endswith((".png", ".jpg", ".txt"))):
            raise CliError(f"{item} is neither a health code nor a file", EXIT_UNUSABLE)
        return item.strip()
    data = _read(path, "input")
    if not looks_like_image(data):
        return data.decode("utf-8", "replace").strip()
    try:
        found = qr_texts(data)
    except UnreadableImage as exc:
        raise CliError(f"{item}: {exc}", EXIT_UNUSABLE) from None
    if len(found) != 1:
        raise CliError(f"{item} shows {len(found)} QR codes, not one", EXIT_UNUSABLE)
    return found[0]


def keys_from(path: Path) -> dict[str, object]:
    """The JWKS in ``path`` (``/api/v1/credentials/healthcode/jwks.json``, saved)."""
    try:
        keys = json.loads(_read(path, "keys file"))
    except ValueError:
        raise CliError(f"{path} is not JSON (a JWKS)", EXIT_UNUSABLE) from None
    if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
        raise CliError(f'{path} is not a JWKS ({{"keys": [...]}})', EXIT_UNUSABLE)
    return keys


def _print(verdict: CodeVerdict, json_output: bool) -> None:
    if json_output:
        stdout().print_json(json.dumps(verdict.to_json()))
        return
    out = stdout()
    headline = f"{verdict.verdict}: {verdict.message}"
    out.print(Text(headline, style="bold green" if verdict.valid else "bold red"))
    if verdict.colour:
        out.print(Text(f"  colour: {verdict.colour}", style=STYLES[verdict.colour]))
        out.print(f"  rule: clause {verdict.clause} of rules {verdict.version}")
        out.print(f"  signed by: {verdict.issuer}")
        expires = dt.datetime.fromtimestamp(verdict.expires_at, dt.UTC)
        out.print(f"  expires: {expires:%Y-%m-%d %H:%M:%S} UTC")


def verify_code_command(
    code: str = typer.Argument(
        ..., metavar="INPUT", help="The code's QR text, a file holding it, or a QR image."
    ),
    keys: Path = typer.Option(
        ..., "--keys", help="The CDC's keys (JWKS, from /api/v1/credentials/healthcode/jwks.json)."
    ),
    at: str | None = typer.Option(None, "--at", help="RFC 3339 time to verify at (now)."),
    json_output: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Verify a health code offline. Exit 0: a current, genuine code; 1: refused
    (EXPIRED, UNKNOWN_KEY, BAD_SIGNATURE, MALFORMED, NOT_YET_VALID); 2: unusable input."""
    with reported():
        if at is None:
            now_s = int(dt.datetime.now(dt.UTC).timestamp())
        else:
            try:
                moment = dt.datetime.fromisoformat(at)
            except ValueError:
                raise CliError(f"--at {at!r} is not an RFC 3339 time", EXIT_UNUSABLE) from None
            if moment.tzinfo is None:
                raise CliError("--at needs an offset or Z (RFC 3339)", EXIT_UNUSABLE)
            now_s = int(moment.timestamp())
        verdict = verify_code(code_text(code), keys_from(keys), now_s=now_s)
        _print(verdict, json_output)
    if not verdict.valid:
        raise typer.Exit(EXIT_FAILED)
