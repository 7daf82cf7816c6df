"""The accounts' background tasks."""

from ..tasks import task
from .addresses import AddressService
from .reset import PasswordResetService


@task(name="accounts.password_reset")
def password_reset(request, email):
    """Make a reset link for ``email``'s account, if it has one, and announce it.

    forgot-password queues this for every address, known or not, so that
    both answers do the same work and take the same time.
    """
    PasswordResetService(request).request_reset(email)


@task(name="accounts.verification")
def verification(request, email):
    """Make a verification link for ``email``'s account, if it has one still
    unverified, and announce it.

    An anonymous ``POST /verify-email/resend`` queues this for every address,
    as forgot-password does, so the answer tells nothing about the address.
    """
    AddressService(request).resend_to(email)


ALL = [password_reset, verification]
