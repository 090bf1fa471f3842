"""Checks every FHIR answer the way a client's validator would: the R4B model of each
resource (a Bundle's entries each by their own type), then our R4 invariants."""

from __future__ import annotations

from typing import Any

from fhir.resources import R4B

from interop.fhir import r4


def model_of(kind: str) -> Any:
    return R4B.get_fhir_model_class(kind)


def valid(body: dict[str, Any]) -> dict[str, Any]:
    model_of(body["resourceType"]).model_validate(body)
    r4.validated(body)
    for entry in body.get("entry", ()):
        valid(entry["resource"])
    return body


def fhir_json(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.content[:600]
    assert response["Content-Type"].startswith("application/fhir+json")
    return valid(response.json())


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle.get("entry", ())]


def parameters(**values: Any) -> dict[str, Any]:
    out = []
    for name, value in values.items():
        name = name.replace("_", "-")
        if isinstance(value, dict):
            out.append({"name": name, "resource": value})
        else:
            out.append({"name": name, "valueString": str(value)})
    return {"resourceType": "Parameters", "parameter": out}
