"""FIM errors meant for users; all subclass :class:`secmon.errors.SecmonError` (the CLI exits 2)."""

from __future__ import annotations

from secmon.errors import SecmonError


class FimError(SecmonError):
    """A FIM problem a user can fix: a bad path, an unreadable baseline, a bad image."""


class FimConfigError(FimError):
    """One problem in a FIM config file: file, field path, bad value and the reason."""

    def __init__(self, file: str, field: str, reason: str, value: object = None) -> None:
        self.file = file
        self.field = field
        self.reason = reason
        self.value = value
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{file}: {field}: {reason}{shown}")


class BaselineIntegrityError(FimError):
    """A baseline whose bytes do not match its recorded digest/HMAC: tampered, truncated or foreign."""

    def __init__(self, file: str, reason: str) -> None:
        self.file = file
        self.reason = reason
        super().__init__(f"baseline {file} failed its integrity check: {reason}")


class ImageError(FimError):
    """A ``docker save`` tarball that cannot be read as an image."""
