"""The local driver: bubblewrap sandboxes, one host uid each."""

from .config import LocalConfig
from .driver import LocalDriver
from .teardown import sweep

__all__ = ["LocalConfig", "LocalDriver", "sweep"]
