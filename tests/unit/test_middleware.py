"""Security headers and CORS of the FastAPI app, in-process (no cluster)."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi.testclient import TestClient

from app.main import create_app
from meshforge.settings import Settings

FORMATS = "/api/v1/system/supported-formats"


def _client(**settings: object) -> TestClient:
    app = create_app()
    app.state.ctx = SimpleNamespace(settings=Settings(**settings))  # type: ignore[arg-type]
    return TestClient(app)


def test_security_headers_on_api_and_docs() -> None:
    client = _client()
    api = client.get(FORMATS)
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["x-frame-options"] == "DENY"
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["referrer-policy"] == "no-referrer"
    docs = client.get("/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]


def test_cors_is_closed_unless_origins_are_configured() -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    closed = _client()
    assert "access-control-allow-origin" not in closed.get(FORMATS, headers=preflight).headers
    assert "access-control-allow-origin" not in closed.options(FORMATS, headers=preflight).headers

    opened = _client(cors_origins=["https://app.example"])
    ok = opened.options(FORMATS, headers={**preflight, "Origin": "https://app.example"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    refused = opened.options(FORMATS, headers=preflight)
    assert "access-control-allow-origin" not in refused.headers
    simple = opened.get(FORMATS, headers={"Origin": "https://app.example"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-credentials" not in simple.headers
