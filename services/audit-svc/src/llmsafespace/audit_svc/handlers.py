"""Thin subscribers: contract in, store call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import AuditPage, AuditQuery, subjects

from .store import AuditStore


def create_router(store: AuditStore) -> NatsRouter:
    router = NatsRouter()

    @router.subscriber(subjects.AUDIT_QUERY, queue=subjects.AUDIT_QUEUE)
    async def query(command: AuditQuery) -> AuditPage:
        return await store.query(command)

    return router
