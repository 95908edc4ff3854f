"""Console pages of the supply application (mounted at ``/supply``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from healthledger.apps.base import PageKit
from healthledger.apps.supply.verification import verify_pack
from healthledger.contracts.errors import InvalidArguments
from healthledger.node.embedded import EmbeddedNode

TEMPLATES = Path(__file__).resolve().parent / "templates"
PUBLIC_PAGES = ("/supply/verify",)


def build_pages(node: EmbeddedNode, kit: PageKit) -> APIRouter:
    """The supply pages: the public pack verification page."""
    router = APIRouter()

    @router.get("/verify", response_class=HTMLResponse)
    def verify_page(request: Request, uri: str = "") -> HTMLResponse:
        """Public: verify a pack by its Digital Link URI; a bad URI is a clear answer."""
        answer, problem = None, None
        if uri:
            try:
                answer = verify_pack(node, uri[:512])
            except InvalidArguments as exc:
                problem = str(exc)
        return kit.render(
            request,
            "supply/verify.html",
            status=422 if problem else 200,
            uri=uri,
            answer=answer,
            problem=problem,
        )

    return router
