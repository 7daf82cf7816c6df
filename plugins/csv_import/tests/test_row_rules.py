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
from vexpenses_csv_import.csvfile import (
    _OTHER_SPACE,
    DATE_FORMATS,
    _check_row_slowly,
    check_batch,
    check_row,
)

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


def batch_results(rows):
    """What check_row gives each row, as check_batch would give it, or None."""
    results = [check_row(fields, TODAY) for fields in rows]
    if any(problems for _, problems in results):
        return None
    names, emails, dates = zip(*(values for values, _ in results), strict=True)
    return list(names), list(emails), [date.isoformat() for date in dates]


def plain_row(rng, i):
    """A row like most of a real file's: it may still break a rule at an edge."""
    words = ["Ana", "João", "dos", "Conceição", "O'Neil", "Zoë", "Lía", "Silva, Ana", "Édi"]
    name = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.02:
        name = rng.choice(["Li", " Ana", "Ana ", "Ana  Li", "Ana\tLi", "A\u00a0Li", "x" * 256])
    local = "".join(rng.choice("abcXYZ09") for _ in range(rng.randint(1, 8)))
    local += rng.choice(["", ".", "_", "+", "-", "'"]) + rng.choice(["x", "Y0"])
    if rng.random() < 0.02:
        local = rng.choice([".a", "a.", "a..b", "a" * 65, "a@b", "a b", "ação"])
    domain = rng.choice(["example.com", "Gmail.COM", "uol.com.br", "b.co"]
                        if rng.random() < 0.98 else ["localhost", "example..com", "-x.com"])
    date = rng.choice(["1990-05-17", "1900-01-01", "2026-01-15", "2020-02-29", "17/05/1990"]
                      if rng.random() < 0.98 else
                      ["1899-12-31", "2026-01-16", "2021-02-29", "31/12/1899", "1990-13-01",
                       "0000-01-01", "1990-5-17"])
    email = f"{local}{i}@{domain}"
    if rng.random() < 0.03:
        email = rng.choice([" ", "\t", "", "\u3000"]) + email + rng.choice([" ", "\r\n", ""])
    return [name, email, date]


def random_batches(count, seed=20261205):
    """Batches of plain rows, some with rows of the corpus mixed in."""
    rng = random.Random(seed)
    for _ in range(count):
        size = rng.choice([1, 2, 3, 10, 40])
        mixed = rng.random() < 0.2
        yield [rng.choice(ALL_ROWS) if mixed and rng.random() < 0.1 else plain_row(rng, i)
               for i in range(size)]


def test_a_batch_checked_at_once_gives_what_each_row_gives():
    """check_batch takes a batch only when check_row takes every row of it, and
    gives the same values; a batch it leaves goes row by row, so any doubt is safe."""
    taken, disagree = [], []
    for rows in itertools.chain(([fields] for fields in ALL_ROWS), random_batches(3000)):
        got = check_batch(rows, TODAY)
        if got is None:
            continue
        taken.append(len(rows))
        expected = batch_results(rows)
        if got != expected or len(set(got[1])) != len(rows):
            disagree.append((rows, got, expected))
    assert disagree == []
    # The fast path is taken, also by batches of many rows: this test can fail.
    assert len(taken) > 500 and sum(size >= 10 for size in taken) > 100


def test_plain_batches_are_checked_at_once():
    """What a large import is made of takes the batch path: quoted names with
    commas, accents, capitals in e-mails, both date formats."""
    rows = [["Silva, Ana Souza", "Ana.Souza+1@Example.COM", "1990-05-17"],
            ["João da Conceição", "joao@uol.com.br", "31/12/1960"],
            ["Zoë O'Neil-Ng", "z_o'neil@gmail.com", "2026-01-15"]]
    assert check_batch(rows, TODAY) == (
        ["Silva, Ana Souza", "João da Conceição", "Zoë O'Neil-Ng"],
        ["ana.souza+1@example.com", "joao@uol.com.br", "z_o'neil@gmail.com"],
        ["1990-05-17", "1960-12-31", "2026-01-15"])
    # White space is folded and stripped as check_row does it.
    assert check_batch([*rows, [" Ana \u00a0 Souza ", " a@example.com\t", "1990-05-17"]],
                       TODAY)[:2] == (
        ["Silva, Ana Souza", "João da Conceição", "Zoë O'Neil-Ng", "Ana Souza"],
        ["ana.souza+1@example.com", "joao@uol.com.br", "z_o'neil@gmail.com", "a@example.com"])
    # One doubtful row sends the whole batch row by row.
    for bad in (["Ana", "a@example.com", "2026-01-16"],  # after today
                ["Ana", "a@example.com", "2021-02-29"],
                ["Ana", "ana.souza+1@example.com", "1990-05-17"],  # the same e-mail
                ["Ana", "a@xn--bcher-kva.de", "1990-05-17"],  # normal form is Unicode
                ["Ana", "a@example.com"], None):
        assert check_batch([*rows, bad], TODAY) is None, bad


def test_the_written_out_white_space_is_what_python_folds():
    folded = {c for c in map(chr, range(0x110000)) if c.isspace() and c != " "}
    assert {c for c in map(chr, range(0x110000)) if _OTHER_SPACE.fullmatch(c)} == folded
