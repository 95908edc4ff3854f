"""The epidemic API routes, through the platform's API app (no sockets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from healthledger.api.app import create_api
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.test_intake import bundle
from tests.support.members import member_reads


@pytest.fixture
def client(bare_node: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(bare_node), raise_server_exceptions=False) as c:
        c.auth = member_reads(bare_node)
        yield c


def test_diseases_are_listed(client: TestClient) -> None:
    response = client.get("/api/v1/epidemic/diseases")
    assert response.status_code == 200
    by_id = {d["id"]: d for d in response.json()}
    assert by_id["tuberculosis"]["icd10"] == ["A15-A19"]
    assert by_id["covid-19"]["icd10"] == ["U07.1", "U07.2"]


def test_a_bundle_is_checked_without_echoing_personal_data(client: TestClient) -> None:
    response = client.post(
        "/api/v1/epidemic/reports/check", json={"format": "fhir", "report": bundle()}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["args"]["disease"] == "B05.9"
    assert body["private_fields"] == [
        "address",
        "birth_date",
        "id_number",
        "id_type",
        "name",
        "phone",
        "sex",
    ]
    assert "Fhirname" not in response.text


def test_a_malformed_bundle_is_a_problem_naming_each_field(client: TestClient) -> None:
    data = bundle()
    del data["entry"][1]["resource"]["onsetDateTime"]
    data["entry"][0]["resource"]["birthDate"] = "yesterday"
    response = client.post(
        "/api/v1/epidemic/reports/check", json={"format": "fhir", "report": data}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "bundle.entry[0].resource.birthDate" in response.text
