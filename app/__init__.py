"""The ingress: FastAPI app, routers, request/response schemas, errors."""
