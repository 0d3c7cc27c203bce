"""``/v1/models/``: the handles this server can answer (SDK ``models.list``).

The built-in model, then each configured provider's models as it lists them. convlog computes
no embeddings, so ``/v1/models/embedding`` lists none.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from api import responses, schemas
from api.endpoint import Call, Endpoint
from service.model import ModelInfo

DEFAULT_CONTEXT_WINDOW = 128_000


def model_json(info: ModelInfo, context_window: int) -> dict[str, Any]:
    name = info.handle.partition("/")[2]
    return responses.ModelOut(
        handle=info.handle,
        name=name,
        display_name=name,
        provider_type=info.endpoint_type,
        provider_name=info.provider,
        model_type="llm",
        max_context_window=context_window,
        model=name,
        model_endpoint_type=info.endpoint_type,
        model_endpoint=info.endpoint,
        context_window=context_window,
        provider_category="base",
    ).model_dump(mode="json")


async def list_models(call: Call) -> Response:
    q: schemas.ListModelsQuery = call.query
    windows = call.services.context_windows
    found = await call.services.catalog.list_models()
    if q.provider_category is not None and "base" not in q.provider_category:
        found = []  # every provider here is configured by the operator (Letta's "base")
    found = [
        m
        for m in found
        if (q.provider_name is None or m.provider == q.provider_name)
        and (q.provider_type is None or m.endpoint_type == q.provider_type)
    ]
    body = [model_json(m, windows.get(m.handle, DEFAULT_CONTEXT_WINDOW)) for m in found]
    return JSONResponse(body)


async def list_embedding_models(call: Call) -> Response:
    return JSONResponse([])


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/models/",
        "list_models",
        "List the models this server can answer with",
        list_models,
        list[responses.ModelOut],
        query=schemas.ListModelsQuery,
        tag="models",
    ),
    Endpoint(
        "GET",
        "/v1/models/embedding",
        "list_embedding_models",
        "List embedding models (none: convlog computes no embeddings)",
        list_embedding_models,
        list[dict[str, Any]],
        tag="models",
    ),
]
