"""The accounts' background tasks."""

from ..tasks import task
from .reset import PasswordResetService


@task(name="accounts.password_reset")
def password_reset(request, email):
    """Make a reset link for ``email``'s account, if it has one, and announce it.

    forgot-password queues this for every address, known or not, so that
    both answers do the same work and take the same time.
    """
    PasswordResetService(request).request_reset(email)


ALL = [password_reset]
