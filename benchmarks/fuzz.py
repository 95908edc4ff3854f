"""Coverage-guided fuzzing of every decoder of untrusted bytes (atheris, i.e. libFuzzer).

The decoders and the errors each documents for bad input are listed in
``tests/vectors/fuzz/decoders.py``: canonical JSON, signed proposals, transactions,
blocks, checkpoints and signed checkpoint notes, EPCIS 2.0 JSON-LD and XML capture,
FHIR report Bundles, GS1 Digital Link URIs and QR photos. Any other exception is a
crash; an input that runs longer than ``--timeout`` seconds of CPU is a hang.

The script founds a small embedded ledger (the demo consortium and the platform's own
traffic, a checkpoint signed at every block) and seeds each decoder's corpus from real
inputs: the ledger's blocks, transactions, proposals and notes, the EPCIS conformance
documents (and the JSON-LD form of the XML ones), the FHIR Bundles of the epidemic tests,
the project's QR codes as PNG and in other image formats, and every input that once broke
a decoder (``tests/vectors/fuzz/<decoder>/``). Then it fuzzes the decoders one after
another, each in a process of its own (one core in all), sharing ``--inputs`` between
them, and prints a line per decoder, then every distinct crash and hang with the file
holding its smallest input, and last the headline.

Usage: python benchmarks/fuzz.py [--inputs 1000000] [--decoders block,qr,...]
[--timeout 5] [--seed 1] [--work DIR]
(a worker: python benchmarks/fuzz.py --worker DECODER --work DIR --runs N ...)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance"
SHARES = {
    "canonical": 3,
    "proposal": 2,
    "transaction": 2,
    "block": 2,
    "checkpoint": 2,
    "checkpoint_note": 2,
    "epcis_json": 1,
    "epcis_xml": 1,
    "fhir": 1,
    "digital_link": 2,
    "qr": 1,
    "credential": 2,
    "base45": 1,
    "cose": 1,
    "sd_jwt": 1,
}
"""Each decoder's share of ``--inputs`` (the slow ones, schema checks and image
decoding, get less)."""
INSTRUMENTED = {
    "digital_link": ("healthledger", "urllib"),
    "qr": ("healthledger", "PIL"),
    "fhir": ("healthledger", "fhir", "fhir_core"),
}
"""Packages whose coverage guides each decoder's fuzzing (default: healthledger only)."""
PHOTO_FORMATS = {
    "JPEG": "L", "GIF": "P", "BMP": "1", "TIFF": "L", "WEBP": "RGB", "PCX": "L",
    "PPM": "L", "TGA": "L",
}  # fmt: skip
"""Formats a photo may come in (each a seed of the QR decoder) and the mode to save it in."""
PROGRESS_EVERY = 256
MAX_RESTARTS = 50
JSON_TOKENS = (
    '{', '}', '[', ']', ':', ',', '"', '\\"', '\\\\', '\\u0000', '\\ud800', '\\u00e9', 'null',
    'true', 'false', '-', '0', '1e9', '1.5', '9007199254740993', '-0', '""', '[]', '{}',
    'Infinity', 'NaN', '1e400',
)  # fmt: skip
XML_TOKENS = (
    '<', '>', '</', '/>', '="', '<?xml version="1.0"?>', '<!DOCTYPE', '<!ENTITY', '&amp;',
    '&#x0;', '<![CDATA[', ']]>', 'xmlns:', '<extension>', '</extension>', '<epc>',
    'urn:epcglobal:epcis:xsd:2', 'EPCISDocument', 'EPCISBody', 'EventList', 'ObjectEvent',
    'AggregationEvent', 'TransformationEvent', 'AssociationEvent', 'sensorReport',
)  # fmt: skip
TEXT_TOKENS = (
    '\n', ' ', '\u2014 ', 'height ', 'block ', 'state ', 'healthledger/', '=', '+', '/',
    'https://id.gs1.org/01/', '/10/', '/21/', '/22/', '?17=', '%', '%2F', '%ZZ', '[', ']',
    'http://[::1', 'urn:epc:id:sgtin:', 'urn:epc:id:sscc:', 'urn:epc:class:lgtin:', '.*',
)  # fmt: skip


# --- the driver ------------------------------------------------------------------------


@dataclasses.dataclass
class Finding:
    """A distinct crash or hang: the first place it was met, and its smallest input."""

    kind: str
    """``crash`` or ``hang``."""
    decoder: str
    signature: str
    """Exception type and where it was raised (the innermost frame of our code)."""
    inputs: int
    """How many inputs met it."""
    smallest: str
    """The file holding the smallest of them."""
    size: int
    detail: str = ""
    """The error and the last frames of its traceback, when first met."""


@dataclasses.dataclass
class Run:
    """One decoder's fuzzing: inputs run, wall time and what it found."""

    decoder: str
    inputs: int
    seconds: float
    findings: list[Finding]
    restarts: int


def _found_ledger(folder: Path) -> None:
    """A small embedded ledger with the platform's own traffic (staff registered and
    revoked, a contract upgraded by vote) and a checkpoint signed at every block."""
    from healthledger.demo.organisations import DEMO_ORGS
    from healthledger.demo.traffic import simulate_platform
    from healthledger.node.embedded import EmbeddedNode

    node = EmbeddedNode.create(
        folder, contracts=_contracts(), plans=DEMO_ORGS, batch_timeout_s=0.005, checkpoint_every=1
    )
    node.start()
    try:
        simulate_platform(node, random.Random(7))
    finally:
        node.stop()


def _contracts() -> tuple[Any, ...]:
    from healthledger.apps.registry import INSTALLED_APPS
    from healthledger.contracts.system import SYSTEM_CONTRACTS

    return (*SYSTEM_CONTRACTS, *(c for app in INSTALLED_APPS for c in app.contracts))


def _seeds(ledger: Path) -> dict[str, list[bytes]]:
    """Real, valid inputs of every decoder (and a few the vectors keep as invalid)."""
    from tests.apps.epidemic.test_intake import bundle
    from tests.apps.epidemic.test_observations import immunization_bundle, lab_bundle

    from healthledger.apps.supply.digital_link import check_digit, pack_link, qr_png
    from healthledger.apps.supply.epcis_xml import xml_document
    from healthledger.contracts.errors import InvalidArguments
    from healthledger.crypto.canonical import canonical_json
    from healthledger.ledger.block import Block
    from healthledger.node.checkpoint import Checkpoint, origin_of
    from healthledger.node.embedded import CHECKPOINT_DIR, EmbeddedNode

    seeds: dict[str, list[bytes]] = {name: [] for name in SHARES}
    node = EmbeddedNode(ledger, contracts=_contracts())
    try:
        store = node.peer.store
        origin = origin_of(store.header(0))
        for height in range(store.height()):
            raw = store.block_bytes(height)
            block = Block.from_json(json.loads(raw))
            seeds["block"].append(raw)
            seeds["checkpoint"].append(Checkpoint.of(block.header, origin=origin).body())
            for tx in block.transactions:
                seeds["transaction"].append(tx.canonical)
                seeds["proposal"].append(tx.signed_proposal.canonical)
                seeds["canonical"].append(tx.signed_proposal.signed_bytes)
        for path in sorted((ledger / CHECKPOINT_DIR).glob("[0-9]*.note")):
            seeds["checkpoint_note"].append(path.read_bytes())
    finally:
        node.stop()
    for folder in (CONFORMANCE / "epcis2" / "JSON", CONFORMANCE / "epcis-event-hash"):
        for path in sorted(folder.rglob("*.json*")):
            seeds["epcis_json"].append(path.read_bytes())
        for path in sorted(folder.rglob("*.xml")):
            seeds["epcis_xml"].append(path.read_bytes())
            with contextlib.suppress(InvalidArguments):  # its JSON-LD form, where it has one
                seeds["epcis_json"].append(json.dumps(xml_document(path.read_bytes())).encode())
    for path in sorted((ROOT / "tests" / "vectors" / "canonical").glob("*.json")):
        seeds["canonical"].append(json.loads(path.read_text())["input_json"].encode())
    seeds["fhir"] += [json.dumps(b()).encode() for b in (bundle, lab_bundle, immunization_bundle)]
    gtins = [item + str(check_digit(item)) for item in ("0695123400001", "0695123400002")]
    links = [
        pack_link(gtin=gtins[0], lot="L1", serial="P1", expiry="991231"),
        pack_link(gtin=gtins[1], lot="LOT-2025-07", serial="SN%2F9", expiry="270700"),
    ]
    seeds["digital_link"] += [link.uri().encode() for link in links]
    seeds["digital_link"] += [
        text.encode()
        for raw in seeds["epcis_json"]
        for text in _strings(json.loads(raw))
        if text.startswith(("urn:epc:", "https://id.gs1.org/", "http"))
    ]
    seeds["qr"] += [qr_png(link) for link in links]
    seeds["qr"] += [_photo(links[0].uri(), fmt) for fmt in PHOTO_FORMATS]
    seeds["canonical"] += [canonical_json({"a": [1, "é", None, True]})]
    from tests.vectors.fuzz.credentials import seeds as credential_seeds

    for name, found in credential_seeds().items():
        seeds[name] += found
    return seeds


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _photo(text: str, fmt: str) -> bytes:
    """A small QR of ``text`` (2 pixels a module) in another image format than PNG."""
    import segno
    from PIL import Image

    png = io.BytesIO()
    segno.make_qr(text, error="m").save(png, kind="png", scale=2, border=2)
    out = io.BytesIO()
    Image.open(png).convert(PHOTO_FORMATS[fmt]).save(out, format=fmt)
    return out.getvalue()


def _write_seeds(work: Path, seeds: dict[str, list[bytes]], max_len: dict[str, int]) -> None:
    for name, found in seeds.items():
        folder = work / "seeds" / name
        folder.mkdir(parents=True, exist_ok=True)
        regressions = ROOT / "tests" / "vectors" / "fuzz" / name
        if regressions.is_dir():
            found = found + [p.read_bytes() for p in sorted(regressions.iterdir())]
        for data in found:
            if len(data) <= max_len[name]:
                (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def _dictionary(work: Path, name: str) -> Path:
    tokens = {"epcis_xml": XML_TOKENS, "checkpoint": TEXT_TOKENS, "checkpoint_note": TEXT_TOKENS}
    chosen = tokens.get(name, TEXT_TOKENS if name == "digital_link" else JSON_TOKENS)
    path = work / "dicts" / f"{name}.dict"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['"' + "".join(f"\\x{b:02x}" for b in t.encode()) + '"' for t in chosen]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_decoder(
    name: str, runs: int, *, work: Path, timeout: float, seed: int, max_len: int
) -> Run:
    """Fuzz one decoder for ``runs`` inputs, restarting its worker after a hang libFuzzer
    itself had to stop (code that never returns to Python)."""
    findings_dir = work / "findings" / name
    artifacts = work / "artifacts" / name
    for folder in (findings_dir, artifacts, work / "corpus" / name, work / "logs"):
        folder.mkdir(parents=True, exist_ok=True)
    progress = work / "progress" / name
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text("0")
    done, restarts, native = 0, 0, []
    started = time.monotonic()
    while done < runs and restarts <= MAX_RESTARTS:
        before = set(artifacts.iterdir())
        command = [
            sys.executable, str(Path(__file__).resolve()), "--worker", name, "--work", str(work),
            "--runs", str(runs - done), "--timeout", str(timeout), "--seed", str(seed + restarts),
            "--max-len", str(max_len), "--done", str(done),
        ]  # fmt: skip
        with (work / "logs" / f"{name}.log").open("a") as log:
            finished = subprocess.run(command, stdout=log, stderr=log, check=False, cwd=ROOT)
        done = _progress(progress, work / "logs" / f"{name}.log", done, finished.returncode)
        if finished.returncode == 0:
            break
        restarts += 1
        new = sorted(set(artifacts.iterdir()) - before)
        native += [_native_finding(name, path) for path in new]
        if not new:
            native.append(Finding("crash", name, f"worker exit {finished.returncode}", 1, "", 0))
    seconds = time.monotonic() - started
    return Run(name, done, seconds, _findings(findings_dir) + native, restarts)


def _progress(progress: Path, log: Path, done: int, returncode: int) -> int:
    """Inputs run so far: libFuzzer's own count when it finished, else the worker's."""
    if returncode == 0:
        lines = log.read_text(errors="replace").splitlines()
        for line in reversed(lines):
            if line.startswith("stat::number_of_executed_units:"):
                return done + int(line.rsplit(":", 1)[1])
    return max(done, int(progress.read_text() or 0))


def _native_finding(name: str, path: Path) -> Finding:
    kind = "hang" if path.name.startswith(("timeout-", "slow-unit-")) else "crash"
    signature = f"libFuzzer {path.name.split('-')[0]}"
    return Finding(kind, name, signature, 1, str(path), path.stat().st_size)


def _findings(folder: Path) -> list[Finding]:
    index = folder / "index.json"
    if not index.exists():
        return []
    return [Finding(**item) for item in json.loads(index.read_text())]


def fuzz(*, inputs: int, names: list[str], work: Path, timeout: float, seed: int) -> list[Run]:
    """Seed every decoder's corpus, then fuzz each in turn for its share of ``inputs``."""
    sys.path.insert(0, str(ROOT))
    from tests.vectors.fuzz.decoders import decoders

    from healthledger.node.embedded import EmbeddedNode

    ledger = work / "ledger"
    if not ledger.exists():
        _found_ledger(ledger)
    node = EmbeddedNode(ledger, contracts=_contracts())
    try:
        max_len = {name: d.max_len for name, d in decoders(node).items()}
    finally:
        node.stop()
    _write_seeds(work, _seeds(ledger), max_len)
    total = sum(SHARES[n] for n in names)
    shares = {n: inputs * SHARES[n] // total for n in names}
    shares[names[0]] += inputs - sum(shares.values())
    runs = []
    for name in names:
        run = _run_decoder(
            name, shares[name], work=work, timeout=timeout, seed=seed, max_len=max_len[name]
        )
        runs.append(run)
        print(_row(run), flush=True)
    return runs


def _row(run: Run) -> str:
    crashes = sum(1 for f in run.findings if f.kind == "crash")
    hangs = sum(1 for f in run.findings if f.kind == "hang")
    rate = run.inputs / run.seconds if run.seconds else 0.0
    return (
        f"{run.decoder:<16} {run.inputs:>10,} inputs {run.seconds:>8.1f} s {rate:>8,.0f} exec/s"
        f" {crashes:>3} crashes {hangs:>3} hangs"
    )


def report(runs: list[Run]) -> str:
    """The findings, one line each, then the headline."""
    lines = []
    for run in runs:
        for f in run.findings:
            lines.append(
                f"{f.kind} in {f.decoder}: {f.signature} ({f.inputs:,} inputs; smallest "
                f"{f.size:,} bytes: {f.smallest})"
            )
    inputs = sum(r.inputs for r in runs)
    crashes = sum(1 for r in runs for f in r.findings if f.kind == "crash")
    hangs = sum(1 for r in runs for f in r.findings if f.kind == "hang")
    seconds = sum(r.seconds for r in runs)
    lines.append(
        f"fuzz: {inputs:,} inputs run over {len(runs)} decoders in {seconds:,.0f} s: "
        f"{crashes} crashes, {hangs} hangs"
    )
    return "\n".join(lines)


# --- the worker (one decoder, one process, under libFuzzer) ------------------------------


class _Hang(BaseException):
    """Raised in a decoder that ran past the time limit (BaseException: decoders that
    catch Exception must not swallow it)."""


class _Worker:
    """Runs each input through one decoder and keeps the findings."""

    def __init__(self, decoder: Any, *, work: Path, timeout: float, done: int) -> None:
        self.decoder = decoder
        self.timeout = timeout
        self.folder = work / "findings" / decoder.name
        self.progress = work / "progress" / decoder.name
        self.count = 0
        self.done = done
        self.armed = False
        self.found = {f.signature: f for f in _findings(self.folder)}

    def on_alarm(self, signum: int, frame: Any) -> None:
        if self.armed:
            self.armed = False
            raise _Hang

    def one_input(self, data: bytes) -> None:
        self.count += 1
        signal.setitimer(signal.ITIMER_PROF, self.timeout)
        self.armed = True
        try:
            self.decoder.decode(data)
            self.armed = False
        except self.decoder.refusals:
            self.armed = False
        except _Hang as exc:
            self.keep("hang", data, exc)
        except Exception as exc:  # noqa: BLE001 - any error but the refusals is a crash
            self.armed = False
            self.keep("crash", data, exc)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        if self.count % PROGRESS_EVERY == 0:
            self.progress.write_text(str(self.done + self.count))

    def keep(self, kind: str, data: bytes, exc: BaseException) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/healthledger/" in f.filename] or list(frames)
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno} ({ours[-1].name})"
        what = type(exc).__name__
        signature = f"{what} at {where}" if kind == "crash" else f"hang in {where}"
        known = self.found.get(signature)
        if known is not None:
            known.inputs += 1
            if len(data) >= known.size:
                return
        digest = hashlib.sha1(data).hexdigest()[:16]
        path = self.folder / f"{kind}-{digest}"
        path.write_bytes(data)
        if known is not None:
            Path(known.smallest).unlink(missing_ok=True)
            known.smallest, known.size = str(path), len(data)
        else:
            detail = "".join(traceback.format_exception(exc, limit=-8))
            self.found[signature] = Finding(
                kind, self.decoder.name, signature, 1, str(path), len(data), detail
            )
        index = self.folder / "index.json"
        index.with_suffix(".tmp").write_text(
            json.dumps([dataclasses.asdict(f) for f in self.found.values()], indent=1)
        )
        os.replace(index.with_suffix(".tmp"), index)


def worker(args: argparse.Namespace) -> None:
    """Fuzz one decoder under libFuzzer until ``--runs`` inputs have run."""
    import atheris

    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=list(INSTRUMENTED.get(args.worker, ("healthledger",)))):
        from PIL import Image
        from tests.vectors.fuzz.decoders import decoders

        from healthledger.node.embedded import EmbeddedNode

        Image.init()  # its format plugins load lazily: load them here, instrumented
    work = Path(args.work)
    node = EmbeddedNode(work / "ledger", contracts=_contracts())
    decoder = decoders(node)[args.worker]
    fuzzer = _Worker(decoder, work=work, timeout=args.timeout, done=args.done)
    signal.signal(signal.SIGPROF, fuzzer.on_alarm)
    flags = [
        str(work / "corpus" / args.worker),
        str(work / "seeds" / args.worker),
        f"-runs={args.runs}",
        f"-seed={args.seed}",
        f"-max_len={args.max_len}",
        f"-timeout={max(30, int(args.timeout * 6))}",
        f"-dict={_dictionary(work, args.worker)}",
        f"-artifact_prefix={work / 'artifacts' / args.worker}/",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
        "-print_pcs=0",
    ]
    atheris.Setup([sys.argv[0], *flags], fuzzer.one_input)
    atheris.Fuzz()


def main() -> None:
    """Parse the command line; fuzz, or be one decoder's worker."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="inputs in total")
    parser.add_argument("--decoders", default=",".join(SHARES), help="comma-separated")
    parser.add_argument("--timeout", type=float, default=5.0, help="CPU seconds per input")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", help="folder for the ledger, corpora and findings")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-len", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--done", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    names = [n for n in args.decoders.split(",") if n]
    unknown = sorted(set(names) - set(SHARES))
    if unknown:
        parser.error(f"unknown decoder(s) {unknown}; choose from {sorted(SHARES)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="healthledger-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"fuzzing {', '.join(names)}: {args.inputs:,} inputs; work folder {work}", flush=True)
    runs = fuzz(inputs=args.inputs, names=names, work=work, timeout=args.timeout, seed=args.seed)
    print(report(runs))
    (work / "summary.json").write_text(json.dumps([dataclasses.asdict(r) for r in runs], indent=1))


if __name__ == "__main__":
    main()
