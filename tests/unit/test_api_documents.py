"""The OpenAPI documents say what the APIs do (``schemas/openapi*.json``, as ``make schemas`` writes them from
the apps): every error answer is ``application/problem+json``, and every request body the document calls valid
is one the API's model accepts (bodies generated from the document by Schemathesis). The running APIs are
held to their documents by ``tests/integration/test_api_documents.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel

from schemas import coordinator_api, generate, partner_api
from services.runtime.http import PROBLEM

DOCUMENTS = ("openapi.json", "openapi-matching.json")
EXAMPLES = 25


def document(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((Path(generate.__file__).parent / name).read_text())
    return loaded


def operations(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document(name)["paths"].items()
        for method, operation in methods.items()
    ]


def body_operations() -> list[Any]:
    found = []
    for name in DOCUMENTS:
        schema = schemathesis.openapi.from_dict(document(name))
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]  # an Err would fail here, as it should
            if "requestBody" in operation.definition.raw:
                found.append(pytest.param(operation, id=f"{name}: {operation.label}"))
    return found


def model_of(operation: Any) -> type[BaseModel]:
    reference = operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    name = reference.rsplit("/", 1)[1]
    model: type[BaseModel] = getattr(partner_api, name, None) or getattr(coordinator_api, name)
    return model


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_error_answer_is_documented_as_problem_details(name: str) -> None:
    for method, path, operation in operations(name):
        for status, response in operation["responses"].items():
            types = set(response.get("content", {}))
            if status.startswith(("4", "5")):
                assert types == {PROBLEM}, (method, path, status, types)
                assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
            else:
                assert types <= {"application/json"}, (method, path, status, types)
    assert "HTTPValidationError" not in document(name)["components"]["schemas"]


@pytest.mark.parametrize("operation", body_operations())
def test_every_body_the_document_calls_valid_the_api_accepts(operation: Any) -> None:
    model = model_of(operation)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def accepted(case: Any) -> None:
        model.model_validate(case.body)

    accepted()


def test_the_documents_carry_the_postcode_pattern_and_distinct_exclusion_zones() -> None:
    schemas = document("openapi.json")["components"]["schemas"]
    postcode = schemas["CoreMember"]["properties"]["postcode_district"]
    assert postcode["pattern"] == "^[A-Z]{1,2}[0-9][0-9A-Z]?$"
    zones = schemas["ReferralSubmission"]["properties"]["exclusion_zones"]
    assert zones["uniqueItems"] is True and zones["maxItems"] == 20
