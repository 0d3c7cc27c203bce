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


def test_every_route_documents_what_the_edge_answers() -> None:
    """401 unless public; 400 (Host), 403 (Origin) and 500 everywhere; 408, 413 and 415 with
    a body: each with a description and the `{detail}` error body.
    """
    spec = document(ENDPOINTS, VERSION)
    detail = {"$ref": "#/components/schemas/ErrorDetail"}
    assert spec["components"]["schemas"]["ErrorDetail"]["properties"]["detail"] == {
        "type": "string"
    }
    for endpoint in ENDPOINTS:
        responses = spec["paths"][endpoint.path][endpoint.method.lower()]["responses"]
        expected = {"400", "403", "422", "500"}
        expected |= set() if endpoint.public else {"401"}
        expected |= {"408", "413", "415"} if endpoint.body is not None else set()
        assert expected <= set(responses), endpoint.operation_id
        if endpoint.public:
            assert "401" not in responses, endpoint.operation_id
        if endpoint.body is None:
            assert not {"408", "413", "415"} & set(responses), endpoint.operation_id
        for status in expected:
            response = responses[status]
            assert response["description"], (endpoint.operation_id, status)
            body = response["content"]["application/json"]["schema"]
            assert body == detail or detail in body["anyOf"], (endpoint.operation_id, status)


def test_every_declared_status_is_documented_with_its_body() -> None:
    paths = document(ENDPOINTS, VERSION)["paths"]
    for endpoint in ENDPOINTS:
        responses = paths[endpoint.path][endpoint.method.lower()]["responses"]
        for status in endpoint.errors:
            assert responses[str(status)]["content"]["application/json"]["schema"]
    send = paths["/v1/conversations/{conversation_id}/messages"]["post"]["responses"]
    # The provider refusing the credentials (a JSON send), or no API key.
    assert "Unauthorized" in send["401"]["description"]
    assert "model provider" in send["401"]["description"]
    assert send["401"]["content"]["application/json"]["schema"] == {
        "anyOf": [
            {"$ref": "#/components/schemas/ModelFailure"},
            {"$ref": "#/components/schemas/ErrorDetail"},
        ]
    }
    assert send["502"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ModelFailure"
    }
