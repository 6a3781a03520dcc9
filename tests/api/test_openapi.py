"""The OpenAPI document at /api/v1/openapi.json."""

from tests.api.helpers import NODE_KEYS


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    validate(spec)
    assert {"/api/v1/nodes", "/api/v1/nodes/{node_id}", "/api/v1/operations/{operation_id}"} <= set(spec["paths"])
    node_schema = spec["components"]["schemas"]["Node"]
    assert NODE_KEYS <= set(node_schema["properties"])
    assert {"basicAuth", "bearerAuth"} <= set(spec["components"]["securitySchemes"])


# Modules of app/blueprints/api that hold no routes of their own: the blueprint with its hooks and error
# handler, the cross-site guard, the schemas, and the route makers that resource modules call by name.
NOT_RESOURCES = {"__init__", "blueprint", "cross_site", "schemas", "schemas_userdata", "list_routes",
                 "userdata_routes"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_operations_are_grouped_by_resource_and_named(app, client):
    """Every operation carries one tag, the name of the module that holds its route, and an operationId
    `<tag>_<action>`, unique, equal to its endpoint and written out in that module (so a grep for the
    name finds the line that adds the route); the document's tags are exactly the resource modules."""
    from pathlib import Path

    import app.blueprints.api as api_package

    spec = client.get("/api/v1/openapi.json").json
    folder = Path(api_package.__file__).parent
    modules = {path.stem for path in folder.glob("*.py")} - NOT_RESOURCES
    endpoints = {rule.endpoint.removeprefix("api."): rule for rule in app.url_map.iter_rules()
                 if rule.endpoint.startswith("api.")}
    seen: dict[str, str] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            where = f"{method.upper()} {path}"
            assert len(operation.get("tags", [])) == 1, where
            (tag,) = operation["tags"]
            assert tag in modules, f"{where}: tag {tag} is no module of app/blueprints/api"
            name = operation.get("operationId", "")
            assert name.startswith(f"{tag}_") and name.replace("_", "").isalpha() and name.islower(), where
            assert name not in seen, f"{where} and {seen.get(name)} are both {name}"
            seen[name] = where
            assert name in endpoints and method.upper() in endpoints[name].methods, where
            assert f'"{name}"' in (folder / f"{tag}.py").read_text(), f"{name} is not named in api/{tag}.py"
    assert set(seen) == set(endpoints), "an API endpoint is missing from the document"
    assert {tag["name"] for tag in spec["tags"]} == modules
    assert {tag for item in spec["paths"].values() for op in item.values() if isinstance(op, dict)
            for tag in op.get("tags", [])} == modules, "a resource module without routes"
