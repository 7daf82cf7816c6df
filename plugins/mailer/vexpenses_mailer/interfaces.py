"""The mailer's replaceable service."""

from zope.interface import Interface


class IMailBackend(Interface):
    """Where messages go. One per process; ``vexpenses.mailer.backend`` picks
    the built-in one (``SMTPMailer``, ``FileMailer``, ``ConsoleMailer``)."""

    def open():
        """A connection for one batch, with ``send(message, sender, recipient)``
        and ``close()``. ``send`` raises ``TransientError`` (try again later) or
        ``PermanentError`` (never); ``open`` raises ``ConnectionFailed``."""
