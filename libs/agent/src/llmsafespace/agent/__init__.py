"""The in-sandbox agent: stateful Python and shell execution over a framed socket protocol."""

from .frames import Outcome, Usage
from .protocol import MAX_HEADER, Frame, FrameTooLarge, ProtocolError, encode, read_frame

__all__ = [
    "MAX_HEADER",
    "Frame",
    "FrameTooLarge",
    "Outcome",
    "ProtocolError",
    "Usage",
    "encode",
    "read_frame",
]
