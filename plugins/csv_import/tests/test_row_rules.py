"""A row's rules are register's: the fast path, the declaration and register agree.

``check_row`` keeps a fast path for the good rows of a large import; the
messages come from the ``Row`` model, made of register's own fields. These
tests hold the three together on the core's nasty-input corpus (its tests of
hostile input and of e-mail identity) and on random rows.
"""

import datetime
import importlib.util
import itertools
import pathlib
import random

import pytest
from vexpenses_csv_import.csvfile import DATE_FORMATS, _check_row_slowly, check_row

from vexpenses_core.accounts.schemas import Register
from vexpenses_core.accounts.validation import parse_date
from vexpenses_core.api import ValidationError
from vexpenses_core.schemas import validate

ROOT = pathlib.Path(__file__).resolve().parents[3]
TODAY = datetime.date(2026, 1, 15)
NAME, EMAIL, DATE = "Ana Souza", "ana@example.com", "1990-05-17"


def corpus(module, *names):
    """Lists of the core's test modules, where this repository has them."""
    path = ROOT / "tests" / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"_corpus_{module}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return [item for name in names for item in getattr(loaded, name)]


NAMES = corpus("test_hostile_input", "UNSAFE_NAMES", "REAL_NAMES") + [
    "", "   ", "Al", "  Al  ", "Ana", "x" * 255, "x" * 256, "x " * 300, "N" * 1021,
    "Ana" + " " * 1100 + "Souza",  # folds to 9 characters, but register refuses it as sent
    "Ana\u200dSouza", "Ana\u2060Souza", "Ａｎａ",
]
EMAILS = corpus("test_hostile_input", "LONG_EMAILS") + corpus(
    "test_email_identity", "SAME", "OTHERS", "REFUSED") + corpus(
    "test_intl_addresses", "ADDRESSES", "HOSTILE_EMAILS") + [
    "not-an-email", "a@b", "ANA@Example.COM", " ana@example.com ", "ana..x@example.com",
    '"quoted"@example.com', "ana@[127.0.0.1]", "ana@xn--bcher-kva.de", "a" * 64 + "@x.com",
    "a" * 65 + "@x.com", "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com", "@example.com",
    "ana@", "ana@@example.com", "ana@exam_ple.com", "ana@-example.com", "Ana+tag@example.com",
]
DATES = ["", " ", "1990-05-17", " 1990-05-17 ", "17/05/1990", "1990-5-17", "2020-02-29",
         "2021-02-29", "2020-02-30", "1899-12-31", "1900-01-01", "31/12/1899", "2026-01-15",
         "2026-01-16", "15/01/2026", "16/01/2026", "2999-01-01", "2020/01/01", "1-2-2000",
         "١٩٩٠-٠٥-١٧", "1990-05-17T00:00", "99999-01-01"]


def rows():
    """Each value of each field with good others, and short or long records."""
    for name in NAMES:
        yield [name, EMAIL, DATE]
    for email in EMAILS:
        yield [NAME, email, DATE]
    for date in DATES:
        yield [NAME, EMAIL, date]
    yield None
    yield [NAME, EMAIL]
    yield [NAME, EMAIL, DATE, ""]


def random_rows(count, seed=20261204):
    rng = random.Random(seed)
    alphabet = "abcXYZ09 .-_+@/éß\u00adｊ\u200b\u202e\t\x00\ufb01用"

    def noise():
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))

    for _ in range(count // 2):  # the corpus's values, mixed
        yield [rng.choice(NAMES), rng.choice(EMAILS), rng.choice(DATES)]
    for _ in range(count - count // 2):
        yield [
            rng.choice([noise(), rng.choice(NAMES), " ".join([noise(), noise()])]),
            rng.choice([noise(), rng.choice(EMAILS), f"{noise()}@{noise()}.com"]),
            rng.choice([noise(), rng.choice(DATES),
                        f"{rng.randint(1890, 2030)}-{rng.randint(0, 13):02}-"
                        f"{rng.randint(0, 32):02}",
                        f"{rng.randint(0, 32):02}/{rng.randint(0, 13):02}/"
                        f"{rng.randint(1890, 2030)}"]),
        ]


ALL_ROWS = list(itertools.chain(rows(), random_rows(3000)))


def test_the_corpus_is_loaded():
    assert len(NAMES) > 20 and len(EMAILS) > 40


def test_the_fast_path_gives_what_the_declaration_gives():
    """Good rows take the fast path; what it returns is what the model returns."""
    disagree = [(fields, check_row(fields, TODAY), _check_row_slowly(fields, TODAY))
                for fields in ALL_ROWS
                if check_row(fields, TODAY) != _check_row_slowly(fields, TODAY)]
    assert disagree == []


def test_both_accept_and_refuse_rows_of_the_corpus():
    """The corpus is worth running: it has good rows and bad ones."""
    results = [check_row(fields, TODAY)[1] is None for fields in ALL_ROWS]
    assert results.count(True) > 100 and results.count(False) > 100


def register_errors(fields):
    body = dict(zip(("name", "email", "birth_date"), fields, strict=True))
    body.update(password="correct horse", password_confirmation="correct horse")
    try:
        validate(Register, body, today=TODAY,
                 parse_date=lambda value: parse_date(value, DATE_FORMATS))
    except ValidationError as exc:
        return exc.errors
    return None


@pytest.mark.parametrize("fields", [f for f in ALL_ROWS if f is not None and len(f) == 3][:400])
def test_a_row_is_refused_as_a_registration_would_be(fields):
    assert check_row(fields, TODAY)[1] == register_errors(fields)
