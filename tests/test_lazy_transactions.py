"""The request's transaction manager: a transaction starts only when something uses it."""

import pytest
import sqlalchemy as sa
import transaction.interfaces

from vexpenses_core.testing import make_user
from vexpenses_core.transactions import LazyTransactionManager


class Hooked:
    def __init__(self):
        self.calls = []

    def __call__(self, committed):
        self.calls.append(committed)


def test_an_unused_transaction_is_never_made():
    manager = LazyTransactionManager()
    manager.begin()
    assert manager._txn is None and not manager.isDoomed()
    manager.commit()
    manager.begin()  # the first one is over
    manager.abort()
    assert manager._txn is None


def test_asking_for_it_starts_it_with_the_annotations_made_before():
    manager = LazyTransactionManager()
    pending = manager.begin()
    pending.user = "7"
    pending.note("/api/v1/user/me")
    txn = manager.get()
    pending.note("later")
    assert txn.user == "7"
    assert txn.description == "/api/v1/user/me\nlater"
    hook = Hooked()
    txn.addAfterCommitHook(hook)
    manager.commit()
    assert hook.calls == [True]
    assert manager._txn is None


def test_it_stays_explicit():
    manager = LazyTransactionManager()
    with pytest.raises(transaction.interfaces.NoTransaction):
        manager.get()
    manager.begin()
    with pytest.raises(transaction.interfaces.AlreadyInTransaction):
        manager.begin()
    manager.get()
    with pytest.raises(transaction.interfaces.AlreadyInTransaction):
        manager.begin()
    manager.abort()


def test_with_statement_commits_what_was_used():
    manager = LazyTransactionManager()
    hook = Hooked()
    with manager:
        manager.get().addAfterCommitHook(hook)
    with manager:
        pass
    assert hook.calls == [True]


def test_an_error_aborts_what_was_used():
    manager = LazyTransactionManager()
    hook = Hooked()
    with pytest.raises(RuntimeError), manager:
        manager.get().addAfterCommitHook(hook)
        raise RuntimeError("boom")
    assert hook.calls == [] and manager._txn is None  # aborted: after-commit hooks never run


def test_requests_still_commit_and_roll_back_their_changes(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    _, token = make_user(app.app.registry, email="lazy@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    app.get("/api/v1/user/me", headers=auth)  # read from the cache: nothing to commit
    app.patch_json("/api/v1/user/me", {"name": "Saved"}, headers=auth)
    app.patch_json("/api/v1/user/me", {"name": ""}, headers=auth, status=422)
    with app.app.registry.dbengine.connect() as conn:
        name = conn.scalar(sa.text("SELECT name FROM users WHERE email = 'lazy@example.com'"))
    assert name == "Saved"
    assert app.get("/api/v1/user/me", headers=auth).json["data"]["name"] == "Saved"
