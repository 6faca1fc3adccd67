"""The published schema lists the error answers every operation can give, not only success:
clients (and schemathesis) check each status they receive against it."""

ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` for a refusal; field name -> messages for invalid input",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}


def _error(description):
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def document_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: 401/403 everywhere (token missing or not allowed),
    400 where the client sends input, 404 where the path names an object."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in result["paths"].items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            errors = {"401": "Not authenticated", "403": "Not allowed"}
            if "requestBody" in operation or operation.get("parameters"):
                errors["400"] = "Invalid input"
            if "{" in path:
                errors["404"] = "No such object among yours"
            for code, description in errors.items():
                responses.setdefault(code, _error(description))
    return result
