"""Forgetting a user whose account is deleted (``vexpenses_erase_user``).

- The imports they made stay, since other people's accounts came from them,
  but lose ``user_id``. The foreign key's ``ON DELETE SET NULL`` would do it
  too; the explicit UPDATE does not depend on SQLite's ``PRAGMA
  foreign_keys`` being on.
- A rejected row of any import (``import_errors``) that names their address
  loses all its fields: the row is about them (name, address, birth date).
  Its number and reasons stay, so the error report still counts it.
- An import's ``original_name`` or ``error`` that quotes the address gets
  ``[erased]`` in its place.
- Uploaded files are not rewritten: each is removed ``file_retention``
  seconds (a day by default) after its import finished, as always.
"""

import json
import re

from sqlalchemy import or_, select, update

from vexpenses_core.accounts.validation import normalize_email

from .models import Import, ImportRowError

ERASED = "[erased]"


def erase_user(dbsession, user):
    """Unlink ``user``'s imports and erase their address from stored rows.

    Returns ``(imports unlinked, rejected rows erased)``.
    """
    unlinked = dbsession.execute(
        update(Import).where(Import.user_id == user.id).values(user_id=None)
        .execution_options(synchronize_session=False)).rowcount
    _erase_from_imports(dbsession, user.email)
    return unlinked, _erase_rejected_rows(dbsession, user.email)


def names(text, email):
    """Whether ``text`` (a CSV field, a file name...) holds the address ``email``:
    as a whole word (``mariana.carla@x.com`` is not ``carla@x.com``), or as
    the whole text in another form (an IDNA domain, upper case, spaces)."""
    if not text:
        return False
    return bool(_address(email).search(text)) or (
        len(text) <= 320 and normalize_email(text) == email)


def _address(email):
    # Not inside a longer local part before it, nor a longer domain after it.
    return re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])" + re.escape(email) + r"(?![\w-]|\.[\w-])",
                      re.IGNORECASE)


def _candidates(column, email):
    """A cheap SQL filter: ``column`` holds the local part (which a domain in IDNA
    form, in upper case or with spaces around keeps). Python decides."""
    local = email.rpartition("@")[0]
    return or_(column.contains(local, autoescape=True),
               column.contains(local.upper(), autoescape=True))


def _erase_rejected_rows(dbsession, email):
    rows = dbsession.execute(
        select(ImportRowError.id, ImportRowError.fields, ImportRowError.errors)
        .where(_candidates(ImportRowError.fields, email))).all()
    erased = 0
    for row_id, fields, errors in rows:
        if not any(names(field, email) for field in json.loads(fields)):
            continue
        dbsession.execute(
            update(ImportRowError).where(ImportRowError.id == row_id)
            .values(fields="[]", errors=_scrub(errors, email))
            .execution_options(synchronize_session=False))
        erased += 1
    return erased


def _erase_from_imports(dbsession, email):
    records = dbsession.execute(
        select(Import.id, Import.original_name, Import.error)
        .where(or_(_candidates(Import.original_name, email),
                   _candidates(Import.error, email)))).all()
    for import_id, original_name, error in records:
        values = {}
        if names(original_name, email):
            values["original_name"] = _scrub(original_name, email)
        if names(error, email):
            values["error"] = _scrub(error, email)
        if values:
            dbsession.execute(
                update(Import).where(Import.id == import_id).values(**values)
                .execution_options(synchronize_session=False))


def _scrub(text, email):
    if not text:
        return text
    scrubbed = _address(email).sub(ERASED, text)
    if scrubbed == text and names(text, email):
        return ERASED  # the address in another form: the whole text goes
    return scrubbed
