"""The REST API of the cloud service (FastAPI), mounted under /api/v1."""

from cloud.api.app import API_PREFIX, api_router, build_api, make_context, mount_api
from cloud.api.auth import Principal
from cloud.api.context import ApiContext, TelemetryReader
from cloud.api.errors import ErrorResponse, install_error_handlers

__all__ = [
    "API_PREFIX",
    "ApiContext",
    "ErrorResponse",
    "Principal",
    "TelemetryReader",
    "api_router",
    "build_api",
    "install_error_handlers",
    "make_context",
    "mount_api",
]
