"""Thin subscribers: contract in, store call, contract out."""

from llmsafespace.contracts import AuditPage, AuditQuery, commands
from llmsafespace.servicekit import Router, handles

from .store import AuditStore


def create_router(store: AuditStore) -> Router:
    router = Router()

    @handles(router, commands.AUDIT_QUERY)
    async def query(command: AuditQuery) -> AuditPage:
        return await store.query(command)

    return router
