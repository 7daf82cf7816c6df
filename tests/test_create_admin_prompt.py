"""`vexpenses create-admin` at a real terminal: the password prompt asks again, and
Ctrl-C or Ctrl-D cancels it in one line, with nothing created."""

import os
import pathlib
import sys

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from vexpenses_core.testing import JWT_SECRET, write_ini
from vexpenses_core.testing.terminal import CTRL_C, CTRL_D, Terminal

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))
PASSWORD = "s3cret-admin-pass"


@pytest.fixture
def database(tmp_path):
    return tmp_path / "admin.sqlite"


@pytest.fixture
def create_admin(tmp_path, database):
    """Start ``vexpenses create-admin`` in a pseudo-terminal, on a new SQLite database."""
    env = {k: v for k, v in os.environ.items() if k != "VEXPENSES_ADMIN_PASSWORD"}
    env.update(VEXPENSES_DATABASE_URL=f"sqlite:///{database}", VEXPENSES_PLUGINS="",
               VEXPENSES_JWT_SECRET=JWT_SECRET, VEXPENSES_AUTO_MIGRATE="true")
    ini = str(write_ini(tmp_path, level="WARNING"))
    terminals = []

    def start(email="boss@example.com"):
        terminal = Terminal([VEXPENSES, "create-admin", ini, "--email", email], env)
        terminals.append(terminal)
        return terminal

    yield start
    for terminal in terminals:
        terminal.close()


def users(database):
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT email, is_admin, password_hash FROM users").all()
    finally:
        engine.dispose()


def test_a_refused_or_mismatched_password_is_asked_again(create_admin, database):
    terminal = create_admin()
    terminal.expect("Password: ")
    terminal.send("another-long-one\n")
    terminal.expect("Repeat the password: ")
    terminal.send(PASSWORD + "\n")
    terminal.expect("does not match")
    terminal.expect("Try again (2 tries left)")
    terminal.expect("Password: ")
    terminal.send("short\n")  # refused before it is repeated
    terminal.expect("at least 8 characters")
    terminal.expect("Try again (1 try left)")
    terminal.expect("Password: ")
    terminal.send(PASSWORD + "\n")
    terminal.expect("Repeat the password: ")
    terminal.send(PASSWORD + "\n")
    terminal.expect("created admin boss@example.com")
    assert terminal.wait() == 0, terminal.output
    assert PASSWORD not in terminal.output  # the prompt did not echo it
    assert "Traceback" not in terminal.output
    [(email, is_admin, password_hash)] = users(database)
    assert (email, is_admin) == ("boss@example.com", 1)
    assert PasswordHasher().verify(password_hash, PASSWORD)


def test_three_refused_passwords_give_up_in_one_line(create_admin, database):
    terminal = create_admin()
    for attempt in range(3):
        terminal.expect("Password: ")
        terminal.send(PASSWORD + "\n")
        terminal.expect("Repeat the password: ")
        terminal.send(f"mistyped-{attempt}\n")
        terminal.expect("does not match")
    assert terminal.wait() == 2
    last = terminal.output.strip().splitlines()[-1]
    assert last == "vexpenses: no password accepted after 3 tries; nothing was created"
    assert terminal.output.count("Password: ") == 3
    assert "Traceback" not in terminal.output
    assert users(database) == []


@pytest.mark.parametrize("key, status", [(CTRL_D, 1), (CTRL_C, 130)], ids=["ctrl-d", "ctrl-c"])
@pytest.mark.parametrize("prompt", ["Password: ", "Repeat the password: "])
def test_ctrl_c_or_ctrl_d_at_a_prompt_cancels_in_one_line(create_admin, database, key, status,
                                                           prompt):
    terminal = create_admin()
    terminal.expect("Password: ")
    if prompt != "Password: ":
        terminal.send(PASSWORD + "\n")
        terminal.expect(prompt)
    terminal.send(key)
    assert terminal.wait() == status, terminal.output
    assert terminal.output.strip().splitlines()[-1] == "vexpenses: cancelled; nothing was created"
    assert "Traceback" not in terminal.output
    assert users(database) == []


def test_an_existing_user_is_promoted_without_a_prompt(create_admin, database):
    terminal = create_admin()
    terminal.expect("Password: ")
    terminal.send(PASSWORD + "\n")
    terminal.expect("Repeat the password: ")
    terminal.send(PASSWORD + "\n")
    assert terminal.wait() == 0, terminal.output
    again = create_admin("Boss@example.com")
    again.expect("it is now an admin")
    assert again.wait() == 0
    assert "Password: " not in again.output
