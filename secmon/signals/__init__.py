"""Security signals: the model, the store, and search over them."""

from secmon.signals.model import Signal, signals_to_frame
from secmon.signals.store import SignalStore

__all__ = ["Signal", "SignalStore", "signals_to_frame"]
