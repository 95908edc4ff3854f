"""One person's facts by pseudonymous id, for another application's contract (the health
code) through the declared query ``epidemic.subject_facts``: the person's case reports,
test results and doses, as recorded, without personal data (the chain holds none).

State keys read::

    person/<pid>/<disease>/<case_id>    index of a person's case reports (cases.py)
    person-lab/<pid>/<lab_id>           index of a person's test results (observations.py)
    dose/<pid>/<cvx>/<dose_number>      index of a person's doses (observations.py)
"""

from __future__ import annotations

from typing import Any

from healthledger.apps.epidemic.visibility import Viewer
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, InvalidArguments

MAX_FACTS = 200
"""Records of each kind returned for one person (the newest are what rules use)."""
CASE_FIELDS = ("case_id", "disease", "classification", "status", "onset", "diagnosis", "region")
LAB_FIELDS = ("lab_id", "test", "disease", "result", "specimen_day", "result_day", "region")
DOSE_FIELDS = ("vaccination_id", "vaccine", "disease", "dose_number", "day", "region")


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def subject_facts(ctx: Context, pid: str) -> dict[str, Any]:
    """The case reports, test results and doses of person ``pid`` that the caller sees,
    and the names of their regions."""
    if not pid.startswith("p") or not 8 <= len(pid) <= 80 or "/" in pid:
        raise InvalidArguments("pid: a pseudonymous id", [{"field": "pid", "message": "not a pid"}])
    viewer = Viewer.of(ctx)
    if viewer.aggregates_only:
        raise AccessDenied(f"{ctx.caller.id} may see aggregates only")

    def seen(keys: list[str], fields: tuple[str, ...]) -> list[dict[str, Any]]:
        out = []
        for key in keys:
            record = ctx.get(key)
            if isinstance(record, dict) and viewer.sees(ctx, record):
                shown = {f: record[f] for f in fields if f in record}
                if "review" in record:
                    shown["reviewed_at"] = record["review"]["at"]
                out.append(shown)
        return out

    people = f"person/{pid}/"
    cases = [
        f"case/{k.rsplit('/', 1)[1]}"
        for k, _ in ctx.range(people, _prefix_end(people), limit=MAX_FACTS)
    ]
    labs_at = f"person-lab/{pid}/"
    labs = [
        f"lab/{k.rsplit('/', 1)[1]}"
        for k, _ in ctx.range(labs_at, _prefix_end(labs_at), limit=MAX_FACTS)
    ]
    doses_at = f"dose/{pid}/"
    doses = [
        f"vaccination/{v['vaccination_id']}"
        for _, v in ctx.range(doses_at, _prefix_end(doses_at), limit=MAX_FACTS)
    ]
    found = {
        "cases": seen(cases, CASE_FIELDS),
        "labs": seen(labs, LAB_FIELDS),
        "doses": seen(doses, DOSE_FIELDS),
    }
    codes = {str(r["region"]) for records in found.values() for r in records if "region" in r}
    names = {code: ctx.get(f"region/{code}") for code in sorted(codes)}
    region_names = {c: str(r["name"]) for c, r in names.items() if isinstance(r, dict)}
    return {"pid": pid, **found, "region_names": region_names}
