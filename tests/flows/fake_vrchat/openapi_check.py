"""Checks the fake's answers against the VRChat OpenAPI spec vendored in `vrchat-openapi/` beside this file
(from github.com/vrchatapi/specification, MIT; see its README).

The spec is split over many files with `$ref`s in places the OpenAPI schema does not allow (`paths`,
`tags`), so openapi-core loads it with its spec validation off and resolves the references itself. The
login answer's schema hides behind the vendor keyword `x-if`; its JSON-Schema branch (`CurrentUser` or
`RequiresTwoFactorAuth`) is checked separately with the OpenAPI 3.0 schema validator.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from fake_vrchat.server import Exchange

SPEC_ROOT = Path(__file__).resolve().parent / "vrchat-openapi" / "openapi"
SPEC = SPEC_ROOT / "openapi.yaml"
LOGIN_RESPONSE = SPEC_ROOT / "components" / "responses" / "authentication" / "CurrentUserLoginResponse.yaml"


@cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC), config=Config(spec_validator_cls=None))


def _retrieve(uri: str) -> Resource[Any]:
    path = Path(uri.removeprefix("file://"))
    return Resource.from_contents(
        yaml.safe_load(path.read_text(encoding="utf-8")), default_specification=DRAFT4
    )


@cache
def _login_validator() -> OAS30Validator:
    document = yaml.safe_load(LOGIN_RESPONSE.read_text(encoding="utf-8"))
    schema = dict(document["content"]["application/json"]["schema"]["x-if"]["then"])
    schema["id"] = LOGIN_RESPONSE.as_uri()  # draft 4, the dialect of OpenAPI 3.0 schemas
    return OAS30Validator(schema, registry=Registry(retrieve=_retrieve))  # type: ignore[call-arg]


def problems(exchange: Exchange) -> list[str]:
    """What is wrong with one answer according to the spec (empty when it conforms)."""
    request = MockRequest("https://api.vrchat.cloud", exchange.method.lower(), "/api/1" + exchange.path)
    response = MockResponse(exchange.body, status_code=exchange.status, content_type=exchange.content_type)
    found: list[str] = []
    try:
        _openapi().validate_response(request, response)
    except Exception as exc:  # openapi-core raises one of many error types
        found.append(f"{type(exc).__name__}: {exc}")
    if exchange.path == "/auth/user" and exchange.status == 200:
        found += [error.message for error in _login_validator().iter_errors(json.loads(exchange.body))]
    return found
