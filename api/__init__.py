"""HTTP: Letta's wire (starlette routes, pydantic wire schemas, error mapping, OpenAPI)."""
