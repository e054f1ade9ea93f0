"""What every LLMSafeSpace service shares: settings, logging, the bus, the database, HTTP."""

from .brokered import BrokerConnection
from .bus import (
    Bus,
    ensure_streams,
    error_middleware,
    error_reply,
    middlewares,
    validation_details,
)
from .db import connect, database_ready, database_unavailable, migrate
from .http import operational_routes, serve
from .lifespan import Startup, starting
from .logs import configure_logging
from .recording import RecordingPool
from .settings import ServiceSettings
from .shutdown import stop_gracefully
from .subscribers import Router, handles, hears, include_commands

__all__ = [
    "BrokerConnection",
    "Bus",
    "RecordingPool",
    "Router",
    "ServiceSettings",
    "Startup",
    "configure_logging",
    "connect",
    "database_ready",
    "database_unavailable",
    "ensure_streams",
    "error_middleware",
    "error_reply",
    "handles",
    "hears",
    "middlewares",
    "migrate",
    "include_commands",
    "operational_routes",
    "serve",
    "starting",
    "stop_gracefully",
    "validation_details",
]
