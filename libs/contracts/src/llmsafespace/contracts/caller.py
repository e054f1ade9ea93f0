"""Who is asking: carried with every command so the owning service checks access."""

from enum import StrEnum

from .base import Contract
from .ids import UserId


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class Caller(Contract):
    user_id: UserId
    role: Role = Role.USER

    def can_access(self, owner_id: str) -> bool:
        return self.role is Role.ADMIN or self.user_id == owner_id
