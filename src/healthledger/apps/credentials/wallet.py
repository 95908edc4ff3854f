"""The holder's wallet (issue 15 item 7): a public, phone-sized page where a citizen
receives, keeps and presents credentials, and the one-time claim offers through which a
credential is issued bound to the wallet's key.

An issuer (a doctor, nurse or lab on the issuing page) makes a *claim offer* instead of
issuing at once: the holder's names, the recorded fact and the formats, kept in this
process for ``OFFER_TTL_S`` under a random token that the page shows as a link and QR
code (``/credentials/wallet#claim=<token>``). The wallet opens it, makes (or reuses) its
ES256 key pair in the browser (the private key non-extractable, in IndexedDB) and posts a
proof of possession: a JWT signed with that key whose header carries the public JWK and
whose ``nonce`` is the token (as an OpenID4VCI ``openid4vci-proof+jwt``). The node then
issues the credential as the issuer who made the offer (demo custody: the node holds
that identity's key), its SD-JWT VC bound to the JWK (``cnf.jwk``, RFC 9901 section
4.1.2). An offer is used once; one lost with a restart of the node is only made again.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from healthledger.apps import PageKit
from healthledger.apps.credentials.facts import VACCINES, HolderName
from healthledger.apps.credentials.service import CONTRACT, CredentialService
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected
from healthledger.crypto.credentials.dcc_valuesets import MANUFACTURER, VACCINE_PRODUCT
from healthledger.crypto.errors import MalformedEncoding, SignatureError
from healthledger.crypto.jose import Jwk, decode_compact, json_object, verify_compact
from healthledger.node.seam import AppNode

STATIC = Path(__file__).resolve().parent / "static"
OFFER_TTL_S = 15 * 60
PROOF_TYP = "openid4vci-proof+jwt"
PROOF_MAX_AGE_S = 300
WALLET_PAGES = (
    "/credentials/wallet",
    "/credentials/wallet.js",
    "/credentials/wallet_page.js",
    "/credentials/qrcode.js",
)
SCRIPTS = ("wallet.js", "wallet_page.js", "qrcode.js")


@dataclass(frozen=True)
class Offer:
    """What an issuer prepared for the holder to claim."""

    identity: str
    source_kind: str
    source_id: str
    holder: HolderName
    formats: tuple[str, ...]
    expires_at: int
    """Unix seconds."""


class ClaimOffers:
    """The open claim offers of this process, each usable once until it expires."""

    def __init__(self) -> None:
        self._offers: dict[str, Offer] = {}
        self._lock = threading.Lock()

    def make(self, offer: Offer, *, now: int) -> str:
        """Keep ``offer``; its token (128 random bits, base64url)."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            for old in [t for t, o in self._offers.items() if o.expires_at <= now]:
                del self._offers[old]
            self._offers[token] = offer
        return token

    def take(self, token: str, *, now: int) -> Offer:
        """The offer of ``token``, no longer open; Rejected if unknown, used or expired."""
        with self._lock:
            offer = self._offers.pop(token, None)
        if offer is None:
            raise Rejected("this claim link is unknown or was used already: ask the issuer "
                           "for a new one")  # fmt: skip
        if offer.expires_at <= now:
            raise Rejected("this claim link has expired: ask the issuer for a new one")
        return offer


def holder_key_of(proof: str, *, token: str, now: int) -> Jwk:
    """The holder's public key from its proof of possession (see the module docstring);
    InvalidArguments naming what is wrong with it."""

    def wrong(message: str) -> InvalidArguments:
        return InvalidArguments(f"the proof of the wallet's key is refused: {message}",
                                [{"field": "proof", "message": message}])  # fmt: skip

    try:
        jws = decode_compact(proof, stage="proof")
        if jws.header.get("typ") != PROOF_TYP or jws.alg != "ES256":
            raise wrong(f"its header is not an ES256 {PROOF_TYP}")
        key = Jwk.from_json(jws.header.get("jwk"))
        if key.members.get("crv") != "P-256":
            raise wrong("the key is not a P-256 key")
        verify_compact(jws, key.key)
        body = json_object(jws.payload, stage="proof", what="the proof's payload")
    except (MalformedEncoding, SignatureError) as exc:
        raise wrong(str(exc)) from None
    if body.get("nonce") != token:
        raise wrong("it is for another claim")
    iat = body.get("iat")
    if not isinstance(iat, int) or abs(now - iat) > PROOF_MAX_AGE_S:
        raise wrong("it is not fresh (iat)")
    members = {k: key.members[k] for k in ("kty", "crv", "x", "y")}
    return Jwk.from_json(members)


class ClaimBody(BaseModel):
    """The wallet's proof of possession of its key."""

    model_config = ConfigDict(extra="forbid")

    proof: str = Field(min_length=1, max_length=4096, description=f"A compact {PROOF_TYP}.")


def offers(node: AppNode) -> ClaimOffers:
    """The node's one set of open claim offers."""
    return node.shared("claim-offers", ClaimOffers)


def make_offer(
    node: AppNode, identity: str, source_kind: str, source_id: str, holder: HolderName,
    formats: list[str],
) -> str:  # fmt: skip
    """A claim offer of the issuer ``identity`` (checked when it is claimed); its token."""
    if not node.holds(identity):
        raise AccessDenied(f"this node holds no key for {identity!r} to issue a claimed "
                           "credential with")  # fmt: skip
    now = node.clock() // 1000
    offer = Offer(identity, source_kind, source_id, holder, tuple(formats), now + OFFER_TTL_S)
    return offers(node).make(offer, now=now)


def wallet_router(node: AppNode) -> APIRouter:
    """``POST /claims/{token}``: the wallet claims an offered credential (public)."""
    router = APIRouter()
    service = node.shared("service", lambda: CredentialService(node))

    @router.post(
        "/claims/{token}",
        summary="Claim an offered credential, bound to the wallet's key (public)",
        responses={
            409: {"description": "The offer is unknown, used or expired"},
            422: {"description": "The proof of possession is refused"},
        },
    )
    def claim(token: str, body: ClaimBody) -> dict[str, Any]:
        """The holder's wallet proves possession of its ES256 key (``proof``: a JWT
        with typ ``openid4vci-proof+jwt``, the public JWK in its header, the claim token
        as ``nonce`` and a fresh ``iat``); the offer's issuer issues the credential now,
        its SD-JWT VC bound to that key (``cnf.jwk``). Answers the credential's texts."""
        now = node.clock() // 1000
        holder_key = holder_key_of(body.proof, token=token, now=now)
        offer = offers(node).take(token, now=now)
        fact = service.fact(offer.identity, offer.source_kind, offer.source_id)
        prepared = service.prepare(offer.identity, offer.source_kind, fact, offer.holder,
                                   formats=offer.formats, source_id=offer.source_id,
                                   holder_key=holder_key)  # fmt: skip
        call = prepared.call
        receipt, result = node.invoke(call.identity, CONTRACT, call.function, call.args,
                                      transient=call.transient)  # fmt: skip
        return {"credential": result, "texts": prepared.texts, "tx_id": receipt.tx_id,
                "issuer": offer.identity.split("/", 1)[0]}  # fmt: skip

    return router


def readable_names() -> dict[str, dict[str, str]]:
    """What the wallet shows for coded values: EU product and manufacturer codes, CVX."""
    cvx = {code: VACCINE_PRODUCT.get(v.product, v.product) for code, v in VACCINES.items()}
    return {"product": dict(VACCINE_PRODUCT), "manufacturer": dict(MANUFACTURER), "cvx": cvx}


def wallet_pages(node: AppNode, kit: PageKit) -> APIRouter:
    """``/credentials/wallet`` and its scripts: public, no login (a citizen is no
    consortium member); it keeps working offline (the verifier's service worker)."""
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/wallet")
    def wallet(request: Request) -> HTMLResponse:
        """The wallet: credentials kept in this browser, received, presented."""
        names = json.dumps(readable_names()).replace("<", "\\u003c")
        return kit.render(request, "credentials/wallet.html", names=names)

    def serving(name: str) -> Callable[[], Response]:
        def script() -> Response:
            """One of the wallet's scripts (public)."""
            return Response((STATIC / name).read_bytes(), media_type="text/javascript")

        return script

    for name in SCRIPTS:
        router.add_api_route(f"/{name}", serving(name), methods=["GET"], response_class=Response)

    return router
