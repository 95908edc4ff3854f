"""``healthledger credentials ...``: verify a health credential offline; make a signer and
issue a sample credential to try it with."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import typer
from rich.text import Text

from healthledger import verify
from healthledger.appkit.qr_image import UnreadableImage, looks_like_image, qr_texts
from healthledger.apps import bench_status, print_figures
from healthledger.apps.credentials.issuance import Signer, SignerFileError, issue_all, new_signer
from healthledger.apps.credentials.qr import qr_code
from healthledger.apps.credentials.records import Recovery, TestResult, Vaccination
from healthledger.cli.credentials_ledger import default_cache, fetch
from healthledger.cli.reporting import (
    EXIT_FAILED,
    EXIT_UNUSABLE,
    CliError,
    reported,
    stderr,
    stdout,
)
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import StatusSource, load_status
from healthledger.crypto.credentials.trust import TrustStore, load_trust
from healthledger.crypto.credentials.verdict import Reason, Verdict, refused
from healthledger.crypto.credentials.verifier import detect
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.jose import Jwk

MAX_INPUT_BYTES = 8 * 1024 * 1024
FORMATS = ("dcc", "shc", "sd-jwt-vc")
KINDS = ("vaccination", "test", "recovery")


def _sample(kind: str, signer: Signer) -> Vaccination | TestResult | Recovery:
    """A sample record of ``kind`` for a fictitious holder, with a fresh identifier."""
    common: dict[str, str] = {
        "family_name": "Wang", "given_name": "Xiaoming", "birth_date": "1990-01-02",
        "country": signer.country, "certificate_issuer": signer.issuer,
        "uci": f"URN:UVCI:01:{signer.country}:{secrets.token_hex(12).upper()}",
    }  # fmt: skip
    today = dt.datetime.now(dt.UTC)
    if kind == "vaccination":
        return Vaccination(**common, product="EU/1/20/1528", manufacturer="ORG-100030215",
                           dose=2, doses=2, date=f"{today:%Y-%m-%d}")  # fmt: skip
    if kind == "test":
        collected = f"{today:%Y-%m-%dT%H:%M:%SZ}"
        return TestResult(**common, test_type="LP6464-4", detected=False,
                          collected_at=collected, centre="Sample lab")  # fmt: skip
    return Recovery(**common, first_positive=f"{today - dt.timedelta(days=14):%Y-%m-%d}",
                    valid_from=f"{today:%Y-%m-%d}",
                    valid_until=f"{today + dt.timedelta(days=166):%Y-%m-%d}")  # fmt: skip


def parse_time(text: str) -> int:
    """Unix seconds of an RFC 3339 time (with its offset or Z)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--at {text!r} is not an RFC 3339 time", EXIT_UNUSABLE) from None
    if moment.tzinfo is None:
        raise CliError("--at needs an offset or Z (RFC 3339)", EXIT_UNUSABLE)
    return int(moment.timestamp())


def _read(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise CliError(f"{path} is larger than {MAX_INPUT_BYTES // 2**20} MB", EXIT_UNUSABLE)
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}", EXIT_UNUSABLE) from None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a credential's text is no file name (too long, say)
        return False


def credential_texts(inputs: list[str]) -> list[str]:
    """The credential texts in ``inputs``: each the text itself, a file holding it, or a
    QR image (every code in it)."""
    texts: list[str] = []
    for item in inputs:
        path = Path(item)
        if _is_file(path):
            data = _read(path, "input")
            if looks_like_image(data):
                texts += qr_texts(data)
            else:
                texts.append(data.decode("utf-8", "replace").strip())
        elif detect([item]) == "unknown" and len(item) < 4096 and ("/" in item or "." in item):
            raise CliError(f"{item} is neither a credential nor a file", EXIT_UNUSABLE)
        else:
            texts.append(item.strip())
    return texts


def _print(verdict: Verdict, json_output: bool) -> None:
    if json_output:
        stdout().print_json(json.dumps(verdict.to_json(), ensure_ascii=False))
        return
    out = stdout()
    if verdict.valid:
        out.print(Text(f"valid {verdict.format} credential", style="bold green"))
    else:
        out.print(Text(f"refused {verdict.format} credential", style="bold red"))
    for finding in verdict.refusals:
        detail = f" ({finding.detail})" if finding.detail else ""
        out.print(f"  {finding.code.value}{detail}: {finding.message}")
    for finding in verdict.warnings:
        out.print(f"  warning {finding.code.value}: {finding.message}")
    for label, value in (("issuer", verdict.issuer), ("key id", verdict.kid),
                         ("credential id", verdict.credential_id)):  # fmt: skip
        if value:
            out.print(f"  {label}: {value}")
    for label, stamp in (("issued", verdict.issued_at), ("expires", verdict.expires_at)):
        if stamp is not None:
            out.print(f"  {label}: {dt.datetime.fromtimestamp(stamp, dt.UTC):%Y-%m-%d %H:%M} UTC")
    if verdict.status_age is not None:
        out.print(f"  status list age: {verdict.status_age} s")
    if verdict.format == "sd-jwt-vc" and verdict.valid:
        hidden = {"iss", "iat", "nbf", "exp", "vct", "cnf", "status", "jti"}
        shown = [f"{k}={v}" for k, v in verdict.claims.items() if k not in hidden]
        out.print(f"  disclosed: {', '.join(shown) or 'nothing'}")


def build_cli() -> typer.Typer:
    """The ``credentials`` command group."""
    cli = typer.Typer(no_args_is_help=True, add_completion=False)

    @cli.callback()
    def credentials() -> None:
        """Health credentials: EU DCC, SMART Health Cards and SD-JWT VC, verified offline."""

    @cli.command("verify")
    def verify_command(
        inputs: list[str] = typer.Argument(
            ...,
            metavar="INPUT...",
            help="The QR text, a file holding it, or a QR image (several for a chunked card).",
        ),
        trust: Path | None = typer.Option(
            None, "--trust", help="A PEM signer certificate, an issuer JWKS or a trust list."
        ),
        url: str | None = typer.Option(
            None, "--url", help="A node to take the trust list and status from (cached)."
        ),
        cache: Path = typer.Option(
            default_cache(), "--cache", help="Where --url keeps the last lists fetched."
        ),
        status: Path | None = typer.Option(
            None, "--status", help="A cached status list or revocation list (JSON)."
        ),
        at: str | None = typer.Option(None, "--at", help="RFC 3339 time to verify at (now)."),
        audience: str | None = typer.Option(None, "--audience", help="Key binding: aud."),
        nonce: str | None = typer.Option(None, "--nonce", help="Key binding: the nonce asked."),
        strict_chunks: bool = typer.Option(
            False, "--strict-chunks", help="Refuse a card split over several QR codes."
        ),
        json_output: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
    ) -> None:
        """Verify a credential offline. Exit 0: valid; 1: refused; 2: unusable input."""
        with reported():
            when = parse_time(at) if at is not None else int(dt.datetime.now(dt.UTC).timestamp())
            if trust is None and url is None:
                raise CliError("give --trust FILE or --url of a node", EXIT_UNUSABLE)
            try:
                cached: StatusSource | None = None
                if trust is None:
                    assert url is not None
                    sources = fetch(url, cache=cache)
                    store: TrustStore = sources.trust
                    cached = sources.status
                    if not json_output:
                        how = "fetched now" if sources.fresh else "cached (node unreachable)"
                        stderr().print(f"trust list and status from {url}, {how}", style="dim")
                else:
                    store = load_trust(_read(trust, "trust file"))
                if status is not None:
                    mtime = int(status.stat().st_mtime) if status.exists() else when
                    cached = load_status(_read(status, "status file"), fetched_at=mtime)
            except CryptoError as exc:
                raise CliError(f"unusable --trust or --status: {exc}", EXIT_UNUSABLE) from None
            asked = audience is not None or nonce is not None
            policy = Policy(audience=audience, nonce=nonce, strict_chunks=strict_chunks,
                            require_key_binding=asked)  # fmt: skip
            try:
                texts = credential_texts(inputs)
                verdict = verify.credential(text=texts, trust=store, status=cached, at=when,
                                            policy=policy)  # fmt: skip
            except UnreadableImage as exc:
                verdict = refused("unknown", Reason.UNREADABLE_IMAGE, str(exc), at=when)
            except verify.VerificationError as exc:
                assert exc.verdict is not None
                verdict = exc.verdict
        _print(verdict, json_output)
        if not verdict.valid:
            raise typer.Exit(EXIT_FAILED)

    trust_cli = typer.Typer(no_args_is_help=True, add_completion=False)
    cli.add_typer(trust_cli, name="trust", help="The ledger's trust list of issuers.")

    @trust_cli.command("export")
    def trust_export(
        url: str = typer.Option(..., "--url", help="The node to export from."),
        out: Path | None = typer.Option(None, "--out", help="Write here (else print it)."),
        signed: bool = typer.Option(
            False, "--signed", help="The signed document with its proofs, not the list alone."
        ),
        cache: Path = typer.Option(default_cache(), "--cache", help="The --url cache."),
    ) -> None:
        """Fetch the node's signed trust list, check its signature and inclusion proofs,
        and write the trust list (for --trust) or, with --signed, the signed document."""
        with reported():
            sources = fetch(url, cache=cache)
            if not sources.fresh:
                raise CliError(f"cannot reach {url}: nothing exported", EXIT_UNUSABLE)
            chosen = sources.trust_list
            if signed:
                folder = cache / url.split("//", 1)[-1].rstrip("/").replace(":", "_")
                chosen = json.loads((folder / "trust-list.json").read_text(encoding="utf-8"))
            text = json.dumps(chosen, indent=1, ensure_ascii=False) + "\n"
            if out is None:
                stdout().print(text, markup=False, end="")
                return
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CliError(f"cannot write {out}: {exc.strerror}") from None
            signers = len(sources.trust_list.get("signers", []))
            stderr().print(f"{signers} document signer(s) written to {out}", style="dim")

    @cli.command("new-signer")
    def new_signer_command(
        folder: Path = typer.Argument(..., help="Folder to write the signer into."),
        issuer: str = typer.Option(..., "--issuer", help="The issuer's URL (iss)."),
        country: str = typer.Option("CN", "--country", help="ISO 3166 country of the issuer."),
        name: str = typer.Option("Document signer", "--name", help="The certificate's name."),
        days: int = typer.Option(365, "--days", min=1, max=3650, help="Certificate validity."),
    ) -> None:
        """Make a P-256 document signer: key.pem, certificate.pem (self-signed, DCC key
        usages), jwks.json and signer.json, for trying credentials out."""
        with reported():
            if (folder / "key.pem").exists():
                raise CliError(f"{folder} already holds a key", EXIT_UNUSABLE)
            now = dt.datetime.now(dt.UTC)
            signer = new_signer(issuer=issuer, country=country, name=name, now=now, days=days)
            signer.save(folder)
            stdout().print(f"signer written to {folder} (trust it with --trust "
                           f"{folder / 'certificate.pem'} or {folder / 'jwks.json'})")  # fmt: skip

    @cli.command("issue-sample")
    def issue_sample(
        signer_dir: Path = typer.Option(..., "--signer", help="A folder from new-signer."),
        fmt: str = typer.Option("dcc", "--format", help="dcc, shc or sd-jwt-vc."),
        kind: str = typer.Option("vaccination", "--kind", help="vaccination, test or recovery."),
        holder: Path | None = typer.Option(None, "--holder", help="The holder's public JWK."),
        qr: Path | None = typer.Option(None, "--qr", help="Also write the QR code (PNG)."),
        days: int = typer.Option(365, "--days", min=1, max=3650, help="Validity in days."),
    ) -> None:
        """Issue a sample credential (a vaccination, a negative test or a recovery) signed
        by your signer and print its text."""
        with reported():
            if fmt not in FORMATS:
                raise CliError(f"--format is one of {', '.join(FORMATS)}", EXIT_UNUSABLE)
            try:
                signer = Signer.load(signer_dir)
            except SignerFileError as exc:
                raise CliError(str(exc), EXIT_UNUSABLE) from None
            holder_jwk = None
            if holder is not None:
                try:
                    holder_jwk = Jwk.from_json(json.loads(_read(holder, "holder JWK")))
                except (ValueError, CryptoError) as exc:
                    raise CliError(f"--holder is not a public JWK: {exc}", EXIT_UNUSABLE) from None
            if kind not in KINDS:
                raise CliError(f"--kind is one of {', '.join(KINDS)}", EXIT_UNUSABLE)
            sample = _sample(kind, signer)
            now = int(dt.datetime.now(dt.UTC).timestamp())
            issued = issue_all(sample, signer, now=now, valid_days=days, holder=holder_jwk)
            if fmt not in issued:
                raise CliError(f"a {kind} has no {fmt} form", EXIT_UNUSABLE)
            text = issued[fmt]
            if qr is not None:
                try:
                    code = qr_code(text)
                    code.save(str(qr), kind="png", scale=4, border=4)
                except (ValueError, OSError) as exc:
                    raise CliError(f"cannot write the QR code: {exc}") from None
                stderr().print(f"QR version {code.version} (error correction M) in {qr}",
                               style="dim")  # fmt: skip
            stdout().print(text, markup=False)

    @cli.command("bench")
    def bench(
        samples: int = typer.Option(2000, "--samples", min=10, help="Verifications timed."),
        credentials: int = typer.Option(
            1000, "--credentials", min=2, max=10_000, help="Credentials issued per round."
        ),
        batch: int = typer.Option(100, "--batch", min=1, max=200, help="Credentials per batch."),
        clients: int = typer.Option(2, "--clients", min=1, max=16, help="Issuing threads."),
        rounds: int = typer.Option(3, "--rounds", min=1, max=20, help="Alternated rounds."),
        quick: bool = typer.Option(
            False, "--quick", help="A small run (20 credentials, 1 round, 10^4 status entries)."
        ),
        json_output: bool = typer.Option(False, "--json", help="Print figures as one JSON line."),
    ) -> None:
        """Credentials committed per second end to end, batched (the headline, beside
        this machine's signing ceiling measured in the same run) and one transaction per
        credential, beside plain transactions measured in the same run; offline
        verification per credential on one core for each encoding (p99 goal 2 ms), QR
        versions, and a status check against 10^6 cached entries (goal 1 ms)."""
        from healthledger.apps.credentials.bench import STATUS_ENTRIES, credentials_benchmark
        from healthledger.cli.bench_credentials import issuance_benchmark

        say = bench_status(json_output)
        if quick:
            samples, credentials, rounds = min(samples, 30), min(credentials, 20), 1
        with reported():
            figures: dict[str, object] = dict(issuance_benchmark(
                credentials=credentials, batch=min(batch, credentials), clients=clients,
                rounds=rounds, status=say,
            ))  # fmt: skip
            figures |= credentials_benchmark(
                samples=samples, status_entries=10_000 if quick else STATUS_ENTRIES, status=say
            )
        print_figures(figures, json_output=json_output)

    return cli
