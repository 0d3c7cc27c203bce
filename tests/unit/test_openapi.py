"""The OpenAPI document lists what each route answers."""

from __future__ import annotations

from api.app import ENDPOINTS, VERSION
from api.openapi import document


def test_every_route_that_names_a_resource_documents_its_404() -> None:
    paths = document(ENDPOINTS, VERSION)["paths"]
    for endpoint in ENDPOINTS:
        responses = paths[endpoint.path][endpoint.method.lower()]["responses"]
        assert {"200", "422"} <= set(responses), endpoint.operation_id
        if endpoint.path_ids:
            assert "404" in responses, endpoint.operation_id


def test_every_operation_is_documented_once() -> None:
    ids = [e.operation_id for e in ENDPOINTS]
    assert len(ids) == len(set(ids))
    paths = document(ENDPOINTS, VERSION)["paths"]
    assert sum(len(methods) for methods in paths.values()) == len(ENDPOINTS)
