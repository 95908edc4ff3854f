"""Who may call what, derived from the contracts' own declarations.

Every contract function declares the roles and organisation kinds it admits
(``@transaction(roles=..., kinds=...)``). This test generates the full matrix of
every function of every installed contract (the system contracts and each
application's) against every demo identity, and checks each cell against a running
node: a caller outside the declaration is refused by the framework
(``CallerNotAdmitted``) before the function runs and nothing is written; a caller
inside it always gets past that gate. A new application is in the matrix as soon as
it is installed.

The data-relation part (who reads whose personal data) is a second matrix: a case
reported by a Guangzhou hospital, asked for by every identity, for its record and
its personal data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.registry import installed_contracts
from healthledger.contracts.contract import Contract, FunctionSpec
from healthledger.contracts.errors import AccessDenied, CallerNotAdmitted, ContractError
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.apps.epidemic.support import person, report
from tests.support.seam import epidemic_seam

CONTRACTS = installed_contracts()
KIND_OF = {plan.id: plan.kind for plan in DEMO_ORGS}


def demo_identities() -> list[tuple[str, str]]:
    """(identity, role) of every person and machine of the demo organisations."""
    found = []
    for plan in DEMO_ORGS:
        for name, role in (("admin", "admin"), ("peer0", "peer"), *plan.identities):
            found.append((f"{plan.id}/{name}", role))
    return found


IDENTITIES = demo_identities()
FUNCTIONS = [(contract, spec) for contract in CONTRACTS for spec in contract.functions.values()]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    data: Path = tmp_path_factory.mktemp("matrix") / "data"
    created = EmbeddedNode.create(
        data, contracts=CONTRACTS, batch_timeout_s=0.005, plans=DEMO_ORGS
    ).start()
    configure(epidemic_seam(created), RegionTable.from_source(TEST_REGIONS))
    yield created
    created.stop()


def call(node: EmbeddedNode, identity: str, contract: type[Contract], spec: FunctionSpec) -> None:
    """Call ``spec`` as ``identity`` with no arguments (what the gate must decide
    without: arguments are checked only once the caller is admitted)."""
    if spec.kind == "query":
        node.query(identity, contract.name, spec.name, {})
    else:
        node.invoke(identity, contract.name, spec.name, {})


def test_every_installed_contract_declares_its_functions() -> None:
    names = {contract.name for contract, _ in FUNCTIONS}
    assert {"membership", "lifecycle", "supply", "epidemic"} <= names
    assert len(FUNCTIONS) >= 40
    assert len(IDENTITIES) == sum(2 + len(plan.identities) for plan in DEMO_ORGS)


@pytest.mark.parametrize(
    ("contract", "spec"),
    FUNCTIONS,
    ids=[f"{contract.name}.{spec.name}" for contract, spec in FUNCTIONS],
)
def test_each_function_admits_exactly_the_declared_callers(
    node: EmbeddedNode, contract: type[Contract], spec: FunctionSpec
) -> None:
    refused, admitted = [], []
    for identity, role in IDENTITIES:
        kind = KIND_OF[identity.split("/", 1)[0]]
        before = node.peer.store.height()
        outcome: ContractError | None = None
        try:
            call(node, identity, contract, spec)
        except ContractError as exc:
            outcome = exc
        if spec.admits(role=role, kind=kind):
            assert not isinstance(outcome, CallerNotAdmitted), (identity, outcome)
            admitted.append(identity)
        else:
            assert isinstance(outcome, CallerNotAdmitted), (identity, outcome)
            assert node.peer.store.height() == before
            refused.append(identity)
    # The declaration is neither empty nor everything for a function that names roles or kinds.
    if spec.roles is not None or spec.kinds is not None:
        assert refused, f"{contract.name}.{spec.name} refuses nobody"
    assert admitted, f"{contract.name}.{spec.name} admits nobody of the demo"


GZ_HOSPITAL = "gz-first-hospital"
PERSONAL_DATA_READERS = {f"{GZ_HOSPITAL}/dr-li", f"{GZ_HOSPITAL}/lab-huang"}
"""Who reads the personal data of a Guangzhou hospital's case: its own doctors and lab."""
CASE_READER_ORGS = {GZ_HOSPITAL, "gd-cdc", "gd-commission"}
"""Whose identities read the case record (pseudonymous): the reporting hospital's, and
those of the province's CDC and commission, whose region holds it (ledger data is an
organisation's, so its admin and peer see what its staff see). Another city's hospital,
a maker, a distributor, a pharmacy, an insurer, a charity and the regulator do not."""


@pytest.fixture(scope="module")
def guangzhou_case(node: EmbeddedNode) -> str:
    return str(report(node, f"{GZ_HOSPITAL}/dr-li", person(77))["case_id"])


@pytest.mark.parametrize(("identity", "role"), IDENTITIES, ids=[i for i, _ in IDENTITIES])
def test_personal_data_reads_across_organisations_and_regions(
    node: EmbeddedNode, guangzhou_case: str, identity: str, role: str
) -> None:
    args = {"case_id": guangzhou_case}
    if identity in PERSONAL_DATA_READERS:
        patient: Any = node.query(identity, "epidemic", "patient", args)
        assert patient["name"] == person(77)["name"]
    else:
        with pytest.raises(AccessDenied):
            node.query(identity, "epidemic", "patient", args)
    if identity.split("/", 1)[0] in CASE_READER_ORGS:
        record = node.query(identity, "epidemic", "get_case", args)
        assert record["case_id"] == guangzhou_case
        assert person(77)["name"] not in repr(record)
    else:
        with pytest.raises(AccessDenied):
            node.query(identity, "epidemic", "get_case", args)
