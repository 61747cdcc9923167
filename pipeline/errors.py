"""One exception tree, each class with one meaning.

Every error a person may see carries a stable code, says what went wrong and where, and offers a
hint. The CLI prints ``error: <message>`` and ``  hint: <hint>``; ``--debug`` adds the traceback.
This module imports nothing from the rest of the package.
"""

from __future__ import annotations


class CareradarError(Exception):
    """Base of every error careradar raises on purpose."""

    code = "E000"
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(CareradarError):
    """The configuration is wrong. The message names the file and the key path."""

    code = "E100"
    exit_code = 2


class NotConfigured(CareradarError):  # noqa: N818 - named after scrapy's NotConfigured
    """A component switches itself off (missing credentials, disabled); it is skipped, not fatal."""

    code = "E110"


class TransientError(CareradarError):
    """Worth retrying later: timeouts, HTTP 429/5xx, a database that went away."""

    code = "E200"

    def __init__(
        self, message: str, *, hint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class TerminalError(CareradarError):
    """Retrying will not help (401, 403, 404): the source is unhealthy until someone acts."""

    code = "E300"


class BadInput(CareradarError):  # noqa: N818 - it names the input, like scrapy's DropItem
    """One record cannot be used. The batch goes on; the record is kept in bad_inputs."""

    code = "E400"

    def __init__(self, reason: str, *, location: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.location = location


class StoreError(CareradarError):
    """The store cannot be opened or migrated."""

    code = "E500"


class NotFound(CareradarError):  # noqa: N818 - a lookup result, not a failure class
    """A named thing (source, item) does not exist; the message lists what does."""

    code = "E600"
