"""The credentials service: issue from recorded facts, change a credential's status, and
export the trust list and the status lists. Routes, pages, the simulator and the CLI use
it; it reaches the node only through the seam.

Document-signing keys are never stored: an issuer's key is derived from its
organisation's vault secret (``AppNode.derived_secret(org, SIGNER_PURPOSE)``), so it
exists only on a node holding that organisation's vault key, and never on chain; its
certificate is the one the trust list holds for that key. The commission's trust-list
signing key is derived the same way (``TRUST_LIST_PURPOSE``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.apps.credentials import facts
from healthledger.apps.credentials.facts import HolderName
from healthledger.apps.credentials.issuance import Signer, issue_all, rid_of, signer_certificate
from healthledger.apps.credentials.issued import BITS, LIST_SIZE, MAX_BATCH, index_key
from healthledger.apps.credentials.records import Record, kind
from healthledger.apps.credentials.signing import SigningJob, SigningPool
from healthledger.apps.credentials.trustdoc import key_from_secret, public_jwk, sign
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected
from healthledger.crypto.credentials.status import STATUS_TYPE, TokenStatusList
from healthledger.crypto.credentials.trust import TRUST_LIST_TYPE, certificate_from_b64, dcc_kid
from healthledger.crypto.jose import Jwk
from healthledger.node.seam import AppNode, Call, NodeError, Outcome, Sent

CONTRACT = "credentials"
SIGNER_PURPOSE = b"healthledger/credentials/document-signer/1"
TRUST_LIST_PURPOSE = b"healthledger/credentials/trust-list/1"
ISSUER_BASE = "https://issuers.healthledger.example"
SOURCES = {"vaccination": "vaccination", "lab": "test", "case": "recovery"}
OBSERVATIONS_PER_QUERY = 1000
"""Ids per ``get_observations`` query (the epidemic contract reads at most 1,000 a call)."""
"""Kinds of recorded fact and the credential each yields."""


def issuer_url(org: str) -> str:
    """The demo's ``iss`` of an organisation (its JWKS: the node's /.well-known/jwks.json)."""
    return f"{ISSUER_BASE}/{org}"


def status_uri(iss: str, org: str) -> str:
    """The uri naming ``org``'s status list (served at /api/v1/credentials/status-lists)."""
    return f"{iss}/status-lists/{org}"


@dataclass(frozen=True)
class Issued:
    """A credential issued: its on-chain record, its texts and where it committed."""

    record: dict[str, Any]
    texts: dict[str, str]
    tx_id: str
    height: int


@dataclass(frozen=True)
class Prepared:
    """A credential signed but not yet recorded: the call that records it."""

    call: Call
    texts: dict[str, str]


@dataclass(frozen=True)
class _Draft:
    """A credential drawn up but not signed: its signing job and what its call names."""

    identity: str
    source_kind: str
    source_id: str
    holder: HolderName
    kid: str
    job: SigningJob


class CredentialService:
    """Issuance, status and exports over one node."""

    def __init__(self, node: AppNode) -> None:
        self.node = node
        self._signers: dict[str, Signer] = {}
        self._drawn: set[tuple[str, int]] = set()
        self._draw_lock = threading.Lock()

    # --- keys ----------------------------------------------------------------------

    def signing_key(self, org: str) -> ec.EllipticCurvePrivateKey:
        """``org``'s document-signing key; NodeError if this node holds no vault key of it."""
        return key_from_secret(self.node.derived_secret(org, SIGNER_PURPOSE))

    def certificate_b64(self, org: str, *, country: str = "CN") -> str:
        """A new self-signed certificate of ``org``'s document-signing key (base64 DER),
        for the commission to propose for the trust list."""
        record = self.node.organisation(org)
        name = f"{(record or {}).get('name', org)} document signer"
        now = dt.datetime.fromtimestamp(self.node.clock() / 1000, dt.UTC)
        cert = signer_certificate(self.signing_key(org), country=country, name=name[:64],
                                  now=now, days=3 * 365)  # fmt: skip
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def signer(self, org: str) -> Signer:
        """``org``'s active document signer on this node (its key and the certificate the
        trust list holds for it); Rejected if the trust list holds none for its key."""
        found = self._signers.get(org)
        if found is not None and self._active(found):
            return found
        try:
            key = self.signing_key(org)
        except NodeError:
            raise AccessDenied(f"this node holds no signing key of {org}") from None
        mine = public_jwk(key.public_key())
        for _, signer in self.node.range("signer/"):
            ours = all(signer["jwk"][k] == mine[k] for k in ("x", "y"))
            if signer["org"] == org and signer["status"] == "active" and ours:
                cert = certificate_from_b64(signer["certificate"])
                found = Signer(key, cert, signer["iss"], signer["country"])
                self._signers[org] = found
                return found
        raise Rejected(f"{org} has no document signer on the trust list for its key")

    def _active(self, signer: Signer) -> bool:
        record = self.node.get(f"signer/{dcc_kid(signer.certificate)}")
        return isinstance(record, dict) and record["status"] == "active"

    # --- issuance ------------------------------------------------------------------

    def fact(self, identity: str, source_kind: str, source_id: str) -> dict[str, Any]:
        """The recorded fact, read through the epidemic contract's declared queries as
        ``identity``; Rejected unless ``identity``'s organisation recorded it."""
        return self.facts(identity, source_kind, [source_id])[0]

    def facts(
        self, identity: str, source_kind: str, source_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The recorded facts ``source_ids``, in order, as ``fact`` reads one; the
        vaccinations or lab results in one query, not one per fact."""
        org = identity.split("/", 1)[0]
        if source_kind == "case":
            found = [
                self.node.query(identity, "epidemic", "get_case", {"case_id": source_id})
                for source_id in source_ids
            ]
        else:
            kind_arg = "lab" if source_kind == "lab" else "vaccination"
            found = []
            for start in range(0, len(source_ids), OBSERVATIONS_PER_QUERY):
                ids = list(source_ids[start : start + OBSERVATIONS_PER_QUERY])
                found.extend(self.node.query(identity, "epidemic", "get_observations",
                                             {"kind": kind_arg, "ids": ids}))  # fmt: skip
        for i, (source_id, fact) in enumerate(zip(source_ids, found, strict=True)):
            field = "source_id" if len(source_ids) == 1 else f"source_ids[{i}]"
            if not isinstance(fact, dict):
                raise InvalidArguments(
                    f"no {source_kind} {source_id} visible to {identity}",
                    [{"field": field, "message": f"no such {source_kind} record"}],
                )
            if fact.get("reporter_org") != org:
                raise AccessDenied(f"{source_kind} {source_id} was recorded by "
                                   f"{fact.get('reporter_org')}, not {org}")  # fmt: skip
        return cast(list[dict[str, Any]], found)

    def prepare(
        self, identity: str, source_kind: str, fact: dict[str, Any], holder: HolderName,
        *, formats: Sequence[str] = ("dcc", "shc", "sd-jwt-vc"), source_id: str,
        holder_key: Jwk | None = None,
    ) -> Prepared:  # fmt: skip
        """Sign the credential of ``fact`` for ``holder`` and make the call recording it;
        its SD-JWT VC is bound to ``holder_key`` (``cnf.jwk``) when one is given."""
        org = identity.split("/", 1)[0]
        issuer_name = str((self.node.organisation(org) or {}).get("name", org))
        return self._prepare(identity, source_kind, fact, holder, signer=self.signer(org),
                             issuer_name=issuer_name, formats=formats,
                             source_id=source_id, holder_key=holder_key)  # fmt: skip

    def _prepare(
        self, identity: str, source_kind: str, fact: dict[str, Any], holder: HolderName,
        *, signer: Signer, issuer_name: str, formats: Sequence[str], source_id: str,
        holder_key: Jwk | None = None,
    ) -> Prepared:  # fmt: skip
        draft = self._draft(identity, source_kind, fact, holder, signer=signer,
                            issuer_name=issuer_name, source_id=source_id,
                            holder_key=holder_key)  # fmt: skip
        job = draft.job
        texts = issue_all(job.record, signer, now=job.now, valid_days=job.valid_days,
                          holder=holder_key, status=job.status)  # fmt: skip
        return self._finish(draft, texts, formats)

    def _draft(
        self, identity: str, source_kind: str, fact: dict[str, Any], holder: HolderName,
        *, signer: Signer, issuer_name: str, source_id: str, holder_key: Jwk | None = None,
    ) -> _Draft:  # fmt: skip
        """Everything of a credential but its signed texts (its record, index, expiry)."""
        org = identity.split("/", 1)[0]
        make: dict[str, Callable[..., Record]] = {
            "vaccination": facts.vaccination, "lab": facts.test_result, "case": facts.recovery,
        }  # fmt: skip
        uci = facts.new_uci(signer.country)
        record = make[source_kind](fact, holder, country=signer.country,
                                   issuer_name=issuer_name[:80], uci=uci)  # fmt: skip
        idx = self.draw_index(org)
        now = self.node.clock() // 1000
        days = facts.valid_days(record, now)
        holder_jwk = None if holder_key is None else dict(holder_key.members)
        job = SigningJob(record, now, days, holder_jwk, (status_uri(signer.issuer, org), idx))
        return _Draft(identity, source_kind, source_id, holder, dcc_kid(signer.certificate), job)

    def _finish(self, draft: _Draft, texts: dict[str, str], formats: Sequence[str]) -> Prepared:
        """The call recording a drafted credential, given its signed texts."""
        wanted = [f for f in formats if f in texts]
        if not wanted:
            raise InvalidArguments("formats", [{"field": "formats", "message": "none issuable"}])
        texts = {f: texts[f] for f in wanted}
        job = draft.job
        uci = job.record.uci
        idx = job.status[1] if job.status is not None else 0
        args = {
            "kind": kind(job.record), "source_kind": draft.source_kind,
            "source_id": draft.source_id, "formats": wanted, "kid": draft.kid,
            "status_index": idx, "uci_hash": hashlib.sha256(uci.encode()).hexdigest(),
            "rid": rid_of(uci), "expires_at": job.now + job.valid_days * facts.DAY_S,
        }  # fmt: skip
        transient = {"credential": {"holder": vars(draft.holder), "salt": secrets.token_hex(32),
                                    "texts": texts}}  # fmt: skip
        return Prepared(Call(draft.identity, CONTRACT, "issue", args, transient), texts)

    def _checked_identity(self, identity: str, source_kind: str) -> None:
        if source_kind not in SOURCES:
            wrong = {"field": "source_kind", "message": f"one of {sorted(SOURCES)}"}
            raise InvalidArguments("source_kind", [wrong])
        if not self.node.holds(identity):
            raise AccessDenied(f"this node holds no key for {identity!r}")

    def issue(
        self, identity: str, source_kind: str, source_id: str, holder: HolderName,
        *, formats: Sequence[str] = ("dcc", "shc", "sd-jwt-vc"),
    ) -> Issued:  # fmt: skip
        """Issue the credential of a recorded fact of ``identity``'s organisation."""
        self._checked_identity(identity, source_kind)
        fact = self.fact(identity, source_kind, source_id)
        prepared = self.prepare(identity, source_kind, fact, holder, formats=formats,
                                source_id=source_id)  # fmt: skip
        call = prepared.call
        receipt, result = self.node.invoke(call.identity, call.contract, call.function,
                                           call.args, transient=call.transient)  # fmt: skip
        return Issued(result, prepared.texts, receipt.tx_id, receipt.height)

    def issue_many(
        self, identity: str, source_kind: str, holders: Sequence[tuple[str, HolderName]],
        *, formats: Sequence[str] = ("dcc", "shc", "sd-jwt-vc"), batch: int = 100,
        signing: SigningPool | None = None,
    ) -> list[Issued | Exception]:  # fmt: skip
        """Issue the credential of each recorded fact (``(source_id, holder)``) of
        ``identity``'s organisation, as a CDC issues a vaccination day: the facts read in
        one query, every credential signed, then recorded ``batch`` to an
        ``issue_batch`` transaction. One outcome per fact, in order: its credential, or
        the error that refused its transaction (all or nothing per transaction; the
        other transactions are unaffected).

        Without ``signing`` every credential is signed here, then all transactions are
        ordered together. With a signing pool the batches are signed in its worker
        processes and each is endorsed and ordered as soon as it is signed, while the
        next ones are being signed; a batch whose signing failed has that error."""
        self._checked_identity(identity, source_kind)
        if not 1 <= batch <= MAX_BATCH:
            raise InvalidArguments("batch", [{"field": "batch", "message": f"1 to {MAX_BATCH}"}])
        org = identity.split("/", 1)[0]
        found = self.facts(identity, source_kind, [source_id for source_id, _ in holders])
        signer = self.signer(org)
        issuer_name = str((self.node.organisation(org) or {}).get("name", org))
        groups: list[list[_Draft]] = []
        pending: list[Future[list[dict[str, str]]]] = []
        for start in range(0, len(holders), batch):
            group = [
                self._draft(identity, source_kind, fact, holder, signer=signer,
                            issuer_name=issuer_name, source_id=source_id)
                for fact, (source_id, holder) in zip(found[start : start + batch],
                                                     holders[start : start + batch], strict=True)
            ]  # fmt: skip
            groups.append(group)
            if signing is not None:  # signed while the next group is drawn up
                pending.append(signing.sign(signer, [d.job for d in group]))
        if signing is None:
            signed = [
                [self._finish(d, self._sign_here(d, signer), formats) for d in group]
                for group in groups
            ]
            return self._record_batches(identity, signed)
        # Each batch is endorsed and ordered as soon as it is signed, without waiting for
        # the commit of the one before: endorsing the next overlaps committing the last.
        sent: list[tuple[list[Prepared], Sent] | Exception] = []
        for group, texts in zip(groups, pending, strict=True):
            try:
                prepared = [
                    self._finish(d, t, formats) for d, t in zip(group, texts.result(), strict=True)
                ]
            except Exception as exc:  # noqa: BLE001 - the batch's outcome, as a refusal is
                sent.append(exc)
                continue
            sent.append((prepared, self.node.send_many([self._batch_call(identity, prepared)])))
        outcomes: list[Issued | Exception] = []
        for group, entry in zip(groups, sent, strict=True):
            if isinstance(entry, Exception):
                outcomes += [entry] * len(group)
                continue
            recorded, ordered = entry
            outcomes += self._issued(recorded, ordered.outcomes()[0])
        return outcomes

    @staticmethod
    def _sign_here(draft: _Draft, signer: Signer) -> dict[str, str]:
        job = draft.job
        holder = None if job.holder is None else Jwk.from_json(job.holder)
        return issue_all(job.record, signer, now=job.now, valid_days=job.valid_days,
                         holder=holder, status=job.status)  # fmt: skip

    def _record_batches(
        self, identity: str, groups: Sequence[Sequence[Prepared]]
    ) -> list[Issued | Exception]:
        """One ``issue_batch`` call per group, ordered together; one outcome per credential."""
        calls = [self._batch_call(identity, group) for group in groups]
        outcomes: list[Issued | Exception] = []
        for group, outcome in zip(groups, self.node.invoke_many(calls), strict=True):
            outcomes += self._issued(group, outcome)
        return outcomes

    @staticmethod
    def _batch_call(identity: str, group: Sequence[Prepared]) -> Call:
        """The ``issue_batch`` call recording ``group``."""
        args = {"credentials": [p.call.args for p in group]}
        kept = [p.call.transient["credential"] for p in group if p.call.transient is not None]
        return Call(identity, CONTRACT, "issue_batch", args, {"credentials": kept})

    @staticmethod
    def _issued(group: Sequence[Prepared], outcome: Outcome) -> list[Issued | Exception]:
        """One outcome per credential of a batch's transaction: all or nothing."""
        if outcome.error is not None or outcome.receipt is None or not outcome.valid:
            return [outcome.error or Rejected("the batch did not commit valid")] * len(group)
        receipt = outcome.receipt
        return [Issued(record, p.texts, receipt.tx_id, receipt.height)
                for record, p in zip(outcome.result, group, strict=True)]  # fmt: skip

    def draw_index(self, org: str) -> int:
        """A status-list index of ``org`` drawn at random (CSPRNG) among unused ones."""
        for _ in range(64):
            idx = secrets.randbelow(LIST_SIZE)
            # Drawn in this process but perhaps not committed yet (a batch): not again,
            # also not by another thread issuing at the same time.
            with self._draw_lock:
                if (org, idx) in self._drawn:
                    continue
                if self.node.get(index_key(org, idx)) is None:
                    self._drawn.add((org, idx))
                    return idx
        raise Rejected(f"{org}'s status list has no free index left to draw")

    def set_status(self, identity: str, credential_id: str, status: str, reason: str) -> Any:
        """Revoke, suspend or reinstate a credential as ``identity``."""
        if not self.node.holds(identity):
            raise AccessDenied(f"this node holds no key for {identity!r}")
        args = {"credential_id": credential_id, "status": status, "reason": reason}
        receipt, result = self.node.invoke(identity, CONTRACT, "set_status", args)
        return {**result, "tx_id": receipt.tx_id, "height": receipt.height}

    def credentials_of(self, org: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """``org``'s credentials, newest first."""
        found = [v for _, v in self.node.range("credential/") if v["org"] == org]
        return sorted(found, key=lambda r: -int(r["issued_at"]))[:limit]

    # --- exports -------------------------------------------------------------------

    def status_document(self) -> dict[str, Any]:
        """Every issuer's status list, the DCC revocations and the SMART Health Cards
        revocation lists, as one ``healthledger-status`` document."""
        signers = {v["kid"]: v for _, v in self.node.range("signer/")}
        lists: dict[str, Any] = {}
        for org in sorted({s["org"] for s in signers.values()}):
            token_list = self.status_list(org)
            for iss in sorted({s["iss"] for s in signers.values() if s["org"] == org}):
                lists[status_uri(iss, org)] = token_list
        revoked, crls = [], defaultdict(list)
        for key, value in self.node.range("dcc-revoked/"):
            revoked.append(key.split("/", 1)[1])
            signer = signers.get(value["kid"])
            if signer is not None:
                crls[str(signer["jwk"]["kid"])].append(value["rid"])
        return {
            "type": STATUS_TYPE,
            "fetched_at": self.node.clock() // 1000,
            "height": self.node.height(),
            "dcc_revoked": sorted(revoked),
            "shc_crls": [
                {"kid": k, "method": "rid", "ctr": len(r), "rids": sorted(r)}
                for k, r in sorted(crls.items())
            ],
            "token_status_lists": lists,
        }

    def status_list(self, org: str) -> dict[str, Any]:
        """``org``'s IETF Token Status List (``bits``, ``lst``)."""
        per_byte = 8 // BITS
        entries = bytearray(LIST_SIZE // per_byte)
        for key, value in self.node.range(f"status/{org}/"):
            idx = int(key.rsplit("/", 1)[1])
            entries[idx // per_byte] |= int(value["value"]) << ((idx % per_byte) * BITS)
        return TokenStatusList(BITS, bytes(entries)).to_json()

    def jwks(self) -> dict[str, Any]:
        """Every active issuer key (SMART Health Cards, SD-JWT VC) as one JWKS."""
        return {"keys": [dict(v["jwk"]) for _, v in self.node.range("signer/")
                         if v["status"] == "active"]}  # fmt: skip

    def trust_list(self) -> dict[str, Any]:
        """The active issuers and signers as a ``healthledger-trust-list`` (unsigned)."""
        active = [v for _, v in self.node.range("signer/") if v["status"] == "active"]
        issuers: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for signer in active:
            issuers[(signer["org"], signer["iss"])].append(dict(signer["jwk"]))
        return {
            "type": TRUST_LIST_TYPE, "version": 1,
            "signers": [{"certificate": s["certificate"], "country": s["country"],
                         "kid": s["kid"], "org": s["org"], "added_tx": s["added_tx"],
                         "jwk": dict(s["jwk"])}
                        for s in active],
            "issuers": [{"iss": iss, "org": org, "name": self._org_name(org),
                         "jwks": {"keys": keys}}
                        for (org, iss), keys in sorted(issuers.items())],
        }  # fmt: skip

    def _org_name(self, org: str) -> str:
        issuer = self.node.get(f"issuer/{org}")
        return str(issuer.get("name", org)) if isinstance(issuer, dict) else org

    def signed_trust_list(self) -> dict[str, Any]:
        """The trust list signed with the commission's trust-list key, with the inclusion
        proof of every transaction that put a signer or that key on chain."""
        listed = self.node.get("trust-list-key")
        if not isinstance(listed, dict):
            raise Rejected("the commission has recorded no trust-list key yet")
        commission = self._commission_holding(listed["jwk"])
        key = key_from_secret(self.node.derived_secret(commission, TRUST_LIST_PURPOSE))
        payload = self.trust_list()
        txs = [listed["set_tx"], *(s["added_tx"] for s in payload["signers"])]
        proofs = [self.node.inclusion_proof(tx) for tx in dict.fromkeys(txs)]
        payload |= {
            "height": self.node.height(), "issued_at": self.node.clock() // 1000,
            "signed_by": {"org": commission, "kid": listed["kid"], "jwk": listed["jwk"],
                          "set_tx": listed["set_tx"]},
            "proofs": proofs,
        }  # fmt: skip
        return sign(payload, key)

    def _commission_holding(self, jwk: dict[str, Any]) -> str:
        for org in self.node.organisations():
            if org.get("kind") != "commission":
                continue
            try:
                key = key_from_secret(self.node.derived_secret(org["id"], TRUST_LIST_PURPOSE))
            except NodeError:
                continue
            if public_jwk(key.public_key()) == {k: jwk[k] for k in ("kty", "crv", "x", "y")}:
                return str(org["id"])
        raise Rejected("this node cannot sign the trust list: the commission's node exports it")

    def trust_list_key(self, commission: str) -> dict[str, Any]:
        """The public JWK of ``commission``'s trust-list key (for ``set_trust_list_key``)."""
        key = key_from_secret(self.node.derived_secret(commission, TRUST_LIST_PURPOSE))
        return public_jwk(key.public_key())
