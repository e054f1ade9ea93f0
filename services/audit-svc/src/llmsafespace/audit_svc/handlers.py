"""Thin subscribers: contract in, store call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import AuditPage, AuditQuery, commands
from llmsafespace.servicekit import handles

from .store import AuditStore


def create_router(store: AuditStore) -> NatsRouter:
    router = NatsRouter()

    @handles(router, commands.AUDIT_QUERY)
    async def query(command: AuditQuery) -> AuditPage:
        return await store.query(command)

    return router
