"""Every figure the monitoring dashboard and the public statistics page show, as JSON
under ``/api/v1/epidemic``: from the same service object the pages call (the node's one
``Dashboard``, ``workers.shared_dashboard``), so the API and the page never disagree.

The dashboard's figures are scoped to a viewer: ``identity`` names the demo identity
whose view is asked for, and the node must hold its key (demo custody), as it must for
the console's login. The public release needs no identity."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError

from healthledger.apps.epidemic.dashboard import Scope, scope_of
from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.disclosure import PublicStatistics
from healthledger.apps.epidemic.filters import UnknownFilter
from healthledger.apps.epidemic.releases import ChainReleases, release_inputs
from healthledger.apps.epidemic.workers import shared_dashboard
from healthledger.contracts.errors import AccessDenied
from healthledger.node.seam import AppNode

IDENTITY = r"^[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9._-]{0,62}$"
Identity = Annotated[
    str,
    Query(
        pattern=IDENTITY,
        description="The demo identity (``org/name``) whose view is shown; this node must "
        "hold its key.",
    ),
]
Disease = Annotated[
    str | None,
    Query(
        max_length=32,
        description="A notifiable disease id (``influenza``); by default the one with most "
        "cases in view. An unknown id is refused (422), never replaced.",
    ),
]
Region = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9]{6}$",
        description="A GB/T 2260 region code in the viewer's scope (``440100``); by default "
        "the whole scope. An unknown code, or one outside the scope, is refused (422).",
    ),
]
_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "The node holds no key for the identity, or its organisation sees "
        "public statistics only"
    },
    422: {
        "description": "A malformed parameter, an unknown disease or region, or a region "
        "outside the viewer's scope"
    },
}


class _Record(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class CurvePoint(_Record):
    """Cases with onset on one day, and the running total."""

    day: int = pydantic.Field(description="Days since 1970-01-01.")
    date: str = pydantic.Field(description="ISO date.")
    count: int
    cumulative: int


class RtPoint(_Record):
    """Rt over the 7-day window ending on a day, with its 95 % credible interval."""

    day: int
    date: str
    mean: float
    lower: float
    upper: float


class NowcastDay(_Record):
    """A recent day's observed count and its expected final count."""

    day: int
    date: str
    observed: int
    expected: int
    completeness: float = pydantic.Field(description="Expected share seen so far, 0-1.")
    corrected: bool


class Nowcast(_Record):
    """Recent days corrected for cases not yet diagnosed, and Rt over them."""

    method: str
    delay_cdf: list[float]
    days: list[NowcastDay]
    rt: list[RtPoint]


class PositivityDay(_Record):
    """Lab tests on a specimen day and the share positive over 7 days (where shown)."""

    day: int
    date: str
    tests: int
    positive: int
    window_tests: int
    window_positive: int
    pct: float | None = pydantic.Field(
        description="Percent positive over the 7 days ending "
        "on the day; null where the rule gives none."
    )
    segment: int | None = pydantic.Field(description="The unbroken run of shown days.")


class MapValue(_Record):
    """Cases in one district (or city without districts), zeros included."""

    code: str
    name: str
    count: int


class Place(_Record):
    """Cases in one region, with its centroid in micro-degrees."""

    code: str
    name: str
    count: int
    lat_e6: int | None
    lon_e6: int | None


class Alert(_Record):
    """An early-warning alert recorded on chain."""

    disease: str
    region: str
    name: str
    day: int
    date: str
    methods: list[str]
    count: int
    baseline_milli: int


class Coverage(_Record):
    """Vaccination coverage of one city."""

    code: str
    name: str
    population: int | None
    source: str | None
    vaccinated: int
    coverage_pct: float | None
    linked_supply_doses: int


class Doubling(_Record):
    """Doubling time in days with its 95 % confidence interval."""

    days: float | None
    lower: float | None
    upper: float | None
    growth_rate: float


class View(_Record):
    """What the figures show."""

    scope: str = pydantic.Field(description="The viewer's scope, in words.")
    subtitle: str = pydantic.Field(description="Disease, region and scope shown, in words.")
    disease: str | None
    region_filter: str | None
    today: int


class Figures(View):
    """Every figure of the monitoring dashboard."""

    scope_kind: str
    diseases: list[str]
    region: str | None = pydantic.Field(description="Region code prefixes in view, joined.")
    cursor: str | None
    total: int
    curve: list[CurvePoint]
    rt: list[RtPoint]
    nowcast: Nowcast | None
    rt_method: str
    rt_explained: str
    doubling: Doubling | None
    positivity: list[PositivityDay]
    positivity_rule: str
    map: list[MapValue]
    places: list[Place]
    cities: list[Place]
    coverage: list[Coverage]
    alerts: list[Alert]


class CurveFigure(View):
    """The epidemic curve."""

    total: int
    curve: list[CurvePoint]


class RtFigure(View):
    """Rt, latest window and nowcast-corrected."""

    rt: list[RtPoint]
    nowcast: Nowcast | None
    rt_method: str
    rt_explained: str


class PositivityFigure(View):
    """Test positivity."""

    positivity: list[PositivityDay]
    positivity_rule: str


class MapFigure(View):
    """The choropleth's values."""

    map: list[MapValue]
    places: list[Place]


class AlertsFigure(View):
    """Early-warning alerts."""

    alerts: list[Alert]


class ReleaseRow(_Record):
    """One city's released count of one disease; null where suppressed."""

    region: str
    name: str
    disease: str
    count: int | None


class PublicRelease(_Record):
    """The day's differentially private release, as the public statistics page shows it."""

    day: int
    date: str
    epsilon: float
    mechanism: str
    suppress_below: int
    recorded_by: str | None
    rows: list[ReleaseRow]
    releases_on_chain: int
    epsilon_spent: float


_VIEW = set(View.model_fields)


def figures_router(node: AppNode) -> APIRouter:
    """The figure routes, mounted under ``/api/v1/epidemic``."""
    router = APIRouter()
    dashboard = shared_dashboard(node)
    releases = ChainReleases(node, None)
    public = PublicStatistics(releases)

    def scope(identity: str) -> Scope:
        if not node.holds(identity):
            raise AccessDenied(f"this node holds no key for {identity!r} (demo custody)")
        found = scope_of(node, identity)
        if found is None:
            raise AccessDenied(
                f"{identity.split('/', 1)[0]} neither reports nor reviews cases: public "
                "statistics only (/api/v1/epidemic/public/release)"
            )
        return found

    def figures(
        identity: str, disease: str | None, region: str | None, fields: set[str]
    ) -> dict[str, Any]:
        try:
            found = dashboard.figures(scope(identity), disease=disease, region=region)
        except UnknownFilter as exc:
            raise RequestValidationError(
                [{"loc": ("query", exc.field), "msg": str(exc), "type": "value_error"}]
            ) from None
        return {k: v for k, v in found.items() if k in fields | _VIEW}

    @router.get("/figures", summary="Every dashboard figure", responses=_ERRORS)
    def all_figures(identity: Identity, disease: Disease = None, region: Region = None) -> Figures:
        """Every figure the monitoring dashboard shows, in the viewer's scope."""
        return Figures(**figures(identity, disease, region, set(Figures.model_fields)))

    @router.get("/figures/curve", summary="Epidemic curve", responses=_ERRORS)
    def curve(identity: Identity, disease: Disease = None, region: Region = None) -> CurveFigure:
        """Cases per day by onset date and the cumulative total."""
        return CurveFigure(**figures(identity, disease, region, {"curve", "total"}))

    @router.get("/figures/rt", summary="Reproduction number Rt", responses=_ERRORS)
    def rt(identity: Identity, disease: Disease = None, region: Region = None) -> RtFigure:
        """Rt by the end of its 7-day window, latest window and nowcast-corrected, with
        the method and what tells the two apart."""
        wanted = {"rt", "nowcast", "rt_method", "rt_explained"}
        return RtFigure(**figures(identity, disease, region, wanted))

    @router.get("/figures/positivity", summary="Test positivity", responses=_ERRORS)
    def positivity(
        identity: Identity, disease: Disease = None, region: Region = None
    ) -> PositivityFigure:
        """Lab tests per specimen day and the 7-day share positive, with its rule."""
        wanted = {"positivity", "positivity_rule"}
        return PositivityFigure(**figures(identity, disease, region, wanted))

    @router.get("/figures/map", summary="Cases by district (the map)", responses=_ERRORS)
    def map_values(identity: Identity, disease: Disease = None, region: Region = None) -> MapFigure:
        """Cases per district in view (zeros included), and per reporting place."""
        return MapFigure(**figures(identity, disease, region, {"map", "places"}))

    @router.get("/figures/alerts", summary="Early-warning alerts", responses=_ERRORS)
    def alerts(identity: Identity, disease: Disease = None, region: Region = None) -> AlertsFigure:
        """The early-warning alerts recorded on chain, in view, newest first."""
        return AlertsFigure(**figures(identity, disease, region, {"alerts"}))

    @router.get(
        "/public/release",
        summary="Public statistics (no identity needed)",
        responses={404: {"description": "No public release is recorded on chain yet"}},
    )
    def public_release() -> PublicRelease:
        """The day's differentially private counts per city and disease, as the public
        statistics page shows them, with the privacy budget spent so far."""
        names, _ = release_inputs(node)
        today = public.served(day_of_ms(node.clock()), names)
        if today is None:
            raise HTTPException(404, "no public release is recorded on chain yet")
        spent = releases.spent()
        return PublicRelease(
            **today.to_json(),
            date=iso(today.day),
            releases_on_chain=spent.releases,
            epsilon_spent=spent.epsilon,
        )

    return router
