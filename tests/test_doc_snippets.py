"""What a newcomer copies from the docs works as written: each page is walked here.

A copy of the repository gets a virtualenv of its own at ``.venv`` in which
``make``'s install for ``make run`` has been done. Each walked page's files
are written into the copy, then its commands run one by one from the copy's
root with that virtualenv active, as a reader would type them:

- a block after a line "`path`:" is that file, whole, at that path;
- a ``sh`` block holds commands. ``export NAME=value`` holds for the rest of
  the page; ``pserve`` and ``make run`` run in the background (the "other
  terminal") until the page is done, on a free port in place of 6543;
- a block after ``<!-- not run: why -->`` is an illustration, or a command
  that cannot run in a test (the line says why). A block after
  ``<!-- run by: tests/path.py::test_name -->`` holds commands that test runs:
  the test must exist and name each command's program and subcommand. Any
  other block fails ``test_every_block_is_run_or_marked``: nothing copyable
  goes untested.

The reference pages (``REFERENCE``) are walked more cheaply, in a directory
of their own with the virtualenv of this run: ``production.ini`` there is
development.ini (SQLite, no Redis), each ``ini`` block is pasted into it
(a block with no section header into ``[app:main]``), each ``sh`` command
runs as written (an optional ``[...]`` part left out), each ``sql`` block
runs against its database, and a page that pasted a block ends with
``vexpenses check production.ini``. The hook reference's generated
signatures are read as the site shows them, marked not run.

Nothing is downloaded but setuptools, once, for pip's isolated builds: the
copy's virtualenv sees the packages of this one (without its vexpenses
distributions), and pip runs with ``--no-index`` (``PIP_NO_INDEX``).
"""

import ast
import configparser
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tomllib
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from vexpenses_core.testing import scratch_mysql_database, wait_for

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUIDE = "docs/writing-a-plugin.md"
QUICKSTART = "docs/quickstart.md"
EMBEDDED = "Run the embedded default"
EMBED = "Embed vexpenses in a host Pyramid app"

#: The reference pages, each walked on its own (see the module's docstring).
REFERENCE = ("docs/accounts.md", "docs/audit_log.md", "docs/configuration.md",
             "docs/csv_import.md", "docs/deployment.md", "docs/hooks.md", "docs/mailer.md",
             "docs/security.md")
#: The pages whose blocks must all be run or marked, and the sections of them
#: that other tests own (the production path: the README's test runs it).
PAGES = {
    GUIDE: (),
    QUICKSTART: ("Run against MariaDB and Redis",),
    "docs/index.md": (),
    "examples/hello/README.md": (),
    "examples/host_app/README.md": (),
    **{page: () for page in REFERENCE},
}
#: The sections walked here; every section of these pages that is not.
WALKED = {GUIDE: None, QUICKSTART: (EMBEDDED, EMBED)}
#: Pages that repeat commands a walked page runs, rather than being walked.
REPEATS = {"examples/hello/README.md": GUIDE, "examples/host_app/README.md": QUICKSTART}

# What a copy of the repository leaves out: environments, build output, runtime files.
UNCOPIED = (".git", ".venv", "var", "site", "build", "dist", "__pycache__", "*.egg-info",
            ".pytest_cache", ".ruff_cache", ".tox", "node_modules")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# A path has a dot or a slash: "...the tables `x` and\n`audit_log_chain`:" is no label.
LABEL = re.compile(r"^`([^`\s]*[./][^`\s]*)`:$")
NOT_RUN = re.compile(r"^<!-- not run: (.+) -->$")
RUN_BY = re.compile(r"^<!-- run by: (\S+\.py)::(\w+) -->$")
OPTIONAL = re.compile(r" \[[^\]]*\]")  # "[--batch-size 1000]" in a synopsis
DOC_PORT = "6543"


@dataclasses.dataclass
class Block:
    page: str
    section: str
    lang: str
    text: str
    path: str | None  # the file the block is, when labelled
    not_run: str | None  # why it is not run, when marked
    run_by: tuple | None = None  # (test file, test name), when another test runs it

    @property
    def commands(self):
        """The block's commands: continuation lines joined, comments left out."""
        if self.lang != "sh" or self.path:
            return []
        lines = self.text.replace("\\\n", " ").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def __str__(self):
        return f"{self.page}, {self.section!r}: ```{self.lang} {self.text[:60]!r}"


def load_hook_reference():
    """The MkDocs hook that writes the hook reference into the pages (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        "hook_reference", ROOT / "docs" / "_hooks" / "hook_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOK_REFERENCE = load_hook_reference()


def markdown(page):
    """The page as the site renders it: with the hook reference generated."""
    text = (ROOT / page).read_text()
    if HOOK_REFERENCE.MARKER.search(text):
        text = HOOK_REFERENCE.expand(text, HOOK_REFERENCE.read_specs())
    return text


def blocks(page):
    text = markdown(page)
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()]
        lines = before.rstrip("\n").splitlines()
        previous = lines[-1] if lines else ""
        sections = re.findall(r"^## (.+)$", before, re.MULTILINE)
        label, mark, run_by = (LABEL.match(previous), NOT_RUN.match(previous),
                               RUN_BY.match(previous))
        found.append(Block(page, sections[-1] if sections else "", match[1], match[2],
                           label and label[1], mark and mark[1],
                           run_by and (run_by[1], run_by[2])))
    return found


def owned(page):
    return [block for block in blocks(page) if block.section not in PAGES[page]]


def walked(page, section=None):
    return [block for block in owned(page) if not (block.not_run or block.run_by)
            and (section is None or block.section == section)]


# -- The static checks -------------------------------------------------------


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_block_is_run_or_marked(page):
    sections = WALKED.get(page, ())
    repeated = {command for block in walked(REPEATS[page]) for command in block.commands
                if block.section in (WALKED[REPEATS[page]] or (block.section,))
                } if page in REPEATS else set()
    untested = []
    for block in owned(page):
        if block.not_run or block.run_by:  # test_every_run_by_names_a_test_that_runs_it
            continue
        if page in REFERENCE:
            if block.lang in ("sh", "ini", "sql") and not block.path:
                continue
        elif page in WALKED and (sections is None or block.section in sections):
            if block.lang == "sh" or block.path:
                continue
        elif block.commands and set(block.commands) <= repeated:
            continue
        untested.append(str(block))
    assert not untested, (
        "blocks that no test runs: walk them here, repeat commands of a walked page, "
        "or mark an illustration with <!-- not run: why --> on the line before")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_file_shown_is_the_file_in_the_repository(page):
    shown = [block for block in owned(page) if block.path]
    for block in shown:
        assert (ROOT / block.path).read_text() == block.text, (
            f"{page} shows {block.path} differently from the repository")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_fence_is_found(page):
    """No block escapes the checks by being indented or oddly fenced."""
    fences = re.findall(r"^\s*(```|~~~)", markdown(page), re.MULTILINE)
    assert len(fences) == 2 * len(blocks(page))


def test_the_markers_are_found():
    """The patterns still match the pages: a marked block, a file, commands."""
    guide = blocks(GUIDE)
    assert any(block.not_run for block in guide)
    assert any(block.path == "examples/hello/pyproject.toml" for block in guide)
    assert any("pip install -e examples/hello" in block.commands for block in guide)
    assert any(block.path for block in walked(QUICKSTART, EMBED))
    assert any(block.run_by for page in REFERENCE for block in blocks(page))
    hooks = blocks("docs/hooks.md")
    assert any(block.text == "vexpenses_includeme(config)\n" and block.not_run
               for block in hooks), "the generated signatures are read, marked not run"


def program_and_subcommand(command):
    words = [word for word in shlex.split(command) if not re.match(r"\w+=", word)]
    return pathlib.PurePath(words[0]).name, words[1]


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_run_by_names_a_test_that_runs_it(page):
    """A ``run by`` mark names a test that exists and invokes the block's program
    (a string of its module) with the block's subcommand (a string of the test)."""
    for block in owned(page):
        if not block.run_by:
            continue
        path, name = block.run_by
        assert (ROOT / path).is_file(), f"{block}: no {path}"
        source = (ROOT / path).read_text()
        [test] = [node for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.FunctionDef) and node.name == name] or [None]
        assert test, f"{block}: {path} has no {name}"
        body = ast.get_source_segment(source, test)
        assert block.commands, f"{block}: only commands can be run by a test"
        for command in block.commands:
            program, subcommand = program_and_subcommand(command)
            assert re.search(rf"[\"']{re.escape(program)}[\"']", source), (
                f"{path} does not run {program}")
            assert re.search(rf"[\"']{re.escape(subcommand)}[\"']", body), (
                f"{path}::{name} does not run {program} {subcommand}")


def server_sections():
    """Every [server:main] shown in the reference pages, as {option: value}."""
    for page in REFERENCE:
        for block in owned(page):
            if block.lang == "ini" and block.text.startswith("[server:main]"):
                shown = configparser.ConfigParser(interpolation=None)
                shown.read_string(block.text)
                yield page, dict(shown["server:main"])


def test_every_server_section_shown_is_production_ini_s():
    """Pasted into production.ini, a [server:main] of the docs keeps vexpenses'
    runner (early 413s) and waitress' body ceiling: it is the shipped one."""
    shipped = configparser.ConfigParser(interpolation=None)
    shipped.read(ROOT / "production.ini")
    found = list(server_sections())
    assert found
    for page, options in found:
        assert options == dict(shipped["server:main"]), page


# -- A copy of the repository with its own virtualenv -------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_requirements():
    found = set()
    for pyproject in ROOT.glob("**/pyproject.toml"):
        if not UNCOPIED_PATH.search(pyproject.relative_to(ROOT).as_posix()):
            found.update(tomllib.loads(pyproject.read_text())["build-system"]["requires"])
    return sorted(found)


UNCOPIED_PATH = re.compile(r"(^|/)(\.venv|\.git|build|dist|site|node_modules)/")


def make_virtualenv(venv, deps):
    """A virtualenv that sees this one's packages, except vexpenses' own distributions,
    with their console scripts (pserve, pytest, pip...)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    deps.mkdir()
    for entry in pathlib.Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("vexpenses", "__editable__", "__pycache__")) \
                or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    [site] = venv.glob("lib/python3*/site-packages")
    (site / "_vexpenses_test_deps.pth").write_text(f"{deps}\n")
    for dist in importlib.metadata.distributions(path=[str(deps)]):
        for ep in dist.entry_points.select(group="console_scripts"):
            script = venv / "bin" / ep.name
            if not script.exists():
                script.write_text(
                    f"#!{venv}/bin/python\nimport sys\nfrom importlib.metadata import EntryPoint\n"
                    f"sys.exit(EntryPoint({ep.name!r}, {ep.value!r}, 'console_scripts')"
                    f".load()())\n")
                script.chmod(0o755)


def shell_environ(clone, wheelhouse):
    """A reader's shell: the clone's virtualenv active, no VEXPENSES_* of ours, pip offline."""
    venv_bin = str(pathlib.Path(sys.executable).parent)
    env = {name: value for name, value in os.environ.items()
           if not (name.startswith(("VEXPENSES_", "PIP_")) and not name.startswith(
               "VEXPENSES_TEST_")) and name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    env.update(PATH=os.pathsep.join([str(clone / ".venv" / "bin"), *path]),
               VIRTUAL_ENV=str(clone / ".venv"), PIP_NO_INDEX="1",
               PIP_FIND_LINKS=str(wheelhouse), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A copy of the repository where `make run`'s install has been done, offline."""
    top = tmp_path_factory.mktemp("newcomer")
    clone = top / "vexpenses"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(*UNCOPIED), symlinks=True)
    wheelhouse = top / "wheels"
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary",
         ":all:", "-d", str(wheelhouse), *build_requirements()],
        capture_output=True, text=True, timeout=300)
    assert download.returncode == 0, f"pip could not fetch setuptools: {download.stderr}"
    make_virtualenv(clone / ".venv", top / "deps")
    env = shell_environ(clone, wheelhouse)
    install = subprocess.run(["make", "-s", ".venv/.stamp-run"], cwd=clone, env=env,
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    return Clone(clone, env)


# -- Running a page ------------------------------------------------------------


@dataclasses.dataclass
class Clone:
    root: pathlib.Path
    environ: dict


class Session:
    """One reader's terminal (and the other ones, for the servers) in the clone."""

    def __init__(self, clone, logs):
        self.root, self.logs = clone.root, logs
        self.env = dict(clone.environ)
        self.port = str(free_port())
        self.url = f"http://localhost:{self.port}"
        self.ran = []  # (command as the page writes it, its output)
        self.servers = []
        for ini in ("development.ini", "examples/host_app/host.ini"):
            path = self.root / ini
            path.write_text(re.sub(r"localhost:\d+", f"localhost:{self.port}",
                                   path.read_text()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        for server, _ in self.servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGINT)  # Ctrl-C
                try:
                    server.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()

    def run_blocks(self, page_blocks, before=None):
        """Run the commands of ``page_blocks``; ``before`` maps a piece of a command to
        what the test does first (what a reader does between two commands)."""
        for block in page_blocks:
            for command in block.commands:
                for piece, action in (before or {}).items():
                    if piece in command:
                        action(self)
                self.run(command)

    def run(self, command):
        typed = command.replace(DOC_PORT, self.port)
        export = re.fullmatch(r"export (\w+)=(.*)", typed)
        if export:
            self.env[export[1]] = " ".join(shlex.split(export[2]))
            self.ran.append((command, ""))
            return
        words = [word for word in shlex.split(typed) if not re.match(r"\w+=", word)]
        if words[0].endswith("pserve") or words[:2] == ["make", "run"]:
            self.start(command, typed)
            return
        result = subprocess.run(["bash", "-c", typed], cwd=self.root, env=self.env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (
            f"{command!r} exited with {result.returncode}\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}{self.server_logs()}")
        self.ran.append((command, result.stdout))

    def start(self, command, typed):
        self.stop()  # the reader stops the one running first: they share the port
        log = self.logs / f"server-{len(self.servers)}.log"
        with log.open("w") as out:
            server = subprocess.Popen(["bash", "-c", typed], cwd=self.root, env=self.env,
                                      stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.servers.append((server, log))

        def answers():
            assert server.poll() is None, f"{command!r} stopped:{self.server_logs()}"
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/openapi.json", timeout=5):
                    return True
            except (urllib.error.URLError, ConnectionError):
                return False

        assert wait_for(answers, 180, 0.5), f"{command!r} never answered:{self.server_logs()}"
        self.ran.append((command, ""))

    def server_logs(self):
        return "".join(f"\n--- {log.name}:\n{log.read_text()[-4000:]}"
                       for _, log in self.servers)

    def output(self, piece):
        """The output of the command ``piece``, or of the one command that holds it."""
        exact = [output for command, output in self.ran if command == piece]
        [output] = exact or [output for command, output in self.ran if piece in command]
        return output

    def get(self, path, body=None):
        """GET ``path``, or POST ``body`` to it as JSON; the answer's JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data,
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def server_log(self):
        """What the server running now has printed."""
        return self.servers[-1][1].read_text()


def write_files(clone, page_blocks):
    for block in page_blocks:
        if block.path:
            (clone.root / block.path).parent.mkdir(parents=True, exist_ok=True)
            (clone.root / block.path).write_text(block.text)


# -- The walks -------------------------------------------------------------------


def test_the_plugin_guide_works_as_written(clone, tmp_path):
    """The plugin made from nothing but the guide's files installs, is enabled
    beside development.ini's plugins, migrates, answers, counts, gets a
    migration for a changed model, and passes its own tests."""
    hello = clone.root / "examples" / "hello"
    shutil.rmtree(hello)
    guide = walked(GUIDE)
    write_files(clone, guide)

    def change_the_model(session):  # "After you change a model"
        models = hello / "vexpenses_hello" / "models.py"
        models.write_text(models.read_text() + (
            "    language: Mapped[str | None] = mapped_column(String(8), default=None)\n"))

    with Session(clone, tmp_path) as session:
        session.run_blocks(guide, before={"vexpenses revision": change_the_model})
        created = json.loads(session.output("/api/v1/hello/greetings -"))
        assert created["status"] is True and created["data"]["name"] == "Ana"
        greeting = f"/api/v1/hello/greetings/{created['data']['id']}"
        assert wait_for(lambda: session.get(greeting)["data"]["message"], 60) == "Hello, Ana!"
        assert "plugin hello:" in session.output("vexpenses --version")
        # +hello kept development.ini's plugins: their sections are in the document.
        tags = {tag["name"] for tag in session.get("/api/v1/openapi.json")["tags"]}
        assert {"hello", "csv import", "audit_log", "mailer"} <= tags
        assert session.output("hello-count") == "1 greetings\n"

    revision = (hello / "vexpenses_hello" / "migrations"
                / "hello_0002_greetings_get_a_language.py").read_text()
    assert re.search(r"^down_revision = ['\"]hello_0001['\"]$", revision, re.MULTILINE)
    assert re.search(r"add_column\(sa\.Column\(['\"]language['\"]", revision)
    assert re.search(r"passed", session.output("pytest examples/hello/tests"))


def test_the_quickstart_runs_the_default_and_reads_its_mail(clone, tmp_path):
    """make run, then the e-mails in var/mail/: the page's one-liner decodes the
    reset link that the file holds quoted-printable."""
    mail = clone.root / "var" / "mail"

    def mails_written(count):
        return lambda session: wait_for(lambda: len(list(mail.glob("*.eml"))) >= count, 60)

    with Session(clone, tmp_path) as session:
        session.run_blocks(walked(QUICKSTART, EMBEDDED), before={
            # the welcome and verification e-mails first, as a reader's
            "forgot-password": mails_written(2),
            "message_from_bytes": mails_written(3),
        })
        printed = session.output("message_from_bytes")
        # Restarted with the console backend, the server prints the next link.
        assert "VEXPENSES_MAILER_BACKEND=console" in session.ran[-1][0]
        session.get("/api/v1/user/forgot-password", {"email": "ana@example.com"})
        assert wait_for(lambda: f"{session.url}/reset-password?" in session.server_log(), 60)
    assert len(list(mail.glob("*.eml"))) == 3, "the console backend wrote a file"
    link = re.search(rf"{session.url}/reset-password\?\S+", printed)
    assert link, printed
    newest = sorted(mail.glob("*.eml"))[-1].read_text()
    assert link[0] not in newest, "the file no longer needs decoding: say so in the page"


def test_the_quickstart_embeds_vexpenses_in_the_host_app(clone, tmp_path):
    """The factory the page shows, installed and served as the page says."""
    embed = walked(QUICKSTART, EMBED)
    write_files(clone, embed)
    with Session(clone, tmp_path) as session:
        session.run_blocks(embed)
        home = session.output(f"curl -s http://localhost:{DOC_PORT}/")
        assert json.loads(home) == {"app": "host"}
        greeted = json.loads(session.output("/api/v1/hello/greetings"))
        assert greeted["status"] is True and greeted["data"]["name"] == "Ana"
        assert session.get("/api/v1/openapi.json")["info"]["title"] == "vexpenses API"


# -- The reference pages' walk -----------------------------------------------------

#: What a reader of each reference page has done before its commands: the
#: page says so in prose. (``VEXPENSES_*`` variables, files in the directory.)
USERS_CSV = "Nome,E-mail,Data de nascimento\nAna Souza,ana@example.com,1990-04-01\n"
#: And what the page says its commands print: {command's piece: a piece of its output}.
READER = {
    "docs/accounts.md": {"expect": {"create-admin": "created admin admin@example.com"}},
    "docs/audit_log.md": {"expect": {"audit verify": "audit log OK: ",
                                     "audit prune": "the chain now starts at row"}},
    "docs/configuration.md": {"expect": {"vexpenses check": "all is well"}},
    # "The password is read from VEXPENSES_ADMIN_PASSWORD or asked for at a prompt".
    "docs/deployment.md": {"env": {"VEXPENSES_ADMIN_PASSWORD": "a long passphrase"},
                           "expect": {"create-admin": "created admin admin@example.com"}},
    "docs/csv_import.md": {"files": {"users.csv": USERS_CSV},
                           "expect": {"vexpenses import ": ": status "}},
    # The DELETE is MariaDB's (INTERVAL), on the migrated table.
    "docs/mailer.md": {"mysql": True, "before_sql": "vexpenses migrate production.ini"},
}


@pytest.fixture
def own_mysql_database():
    """A MariaDB database of the page's own: its migrate sees no other test's branches."""
    with scratch_mysql_database("vexpenses_docs") as url:
        yield url


class Desk:
    """A reader's directory holding production.ini, and their shell in it."""

    def __init__(self, directory, env):
        self.directory = directory
        self.ini = directory / "production.ini"
        self.config = configparser.ConfigParser(interpolation=None)
        self.config.optionxform = str
        self.config.read(ROOT / "development.ini")
        self.save()
        venv_bin = str(pathlib.Path(sys.executable).parent)
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith("VEXPENSES_") or name.startswith("VEXPENSES_TEST_")}
        self.env.update(env, PATH=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
        self.pasted = False
        self.ran = []

    def save(self):
        with self.ini.open("w") as out:
            self.config.write(out)

    def paste(self, block):
        """An ini block into production.ini: its options replace those of the same name."""
        text = block.text if block.text.startswith("[") else "[app:main]\n" + block.text
        shown = configparser.ConfigParser(interpolation=None)
        shown.optionxform = str
        shown.read_string(text)
        for section in shown.sections():
            if not self.config.has_section(section):
                self.config.add_section(section)
            for option, value in shown[section].items():
                self.config[section][option] = value
        self.save()
        self.pasted = True

    def run(self, command):
        typed = OPTIONAL.sub("", command)
        result = subprocess.run(["bash", "-c", typed], cwd=self.directory, env=self.env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (
            f"{command!r} exited with {result.returncode}\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}\nproduction.ini:\n{self.ini.read_text()}")
        self.ran.append((command, result.stdout))
        return result.stdout

    def sql(self, block):
        url = self.env.get("VEXPENSES_DATABASE_URL") or self.config["app:main"][
            "vexpenses.database_url"]
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(block.text.strip().rstrip(";"))
        finally:
            engine.dispose()


@pytest.mark.parametrize("page", REFERENCE)
def test_the_reference_page_works_as_written(page, tmp_path, request):
    """The page's commands run as written against its own production.ini (the
    embedded default with the page's blocks pasted in), which then checks."""
    reader = READER.get(page, {})
    env = dict(reader.get("env", {}))
    if reader.get("mysql"):
        env["VEXPENSES_DATABASE_URL"] = request.getfixturevalue("own_mysql_database")
    desk = Desk(tmp_path, env)
    for name, text in reader.get("files", {}).items():
        (tmp_path / name).write_text(text)
    for block in walked(page):
        if block.lang == "ini":
            desk.paste(block)
        elif block.lang == "sql":
            if reader.get("before_sql"):
                desk.run(reader["before_sql"])
            desk.sql(block)
        else:
            for command in block.commands:
                desk.run(command)
    if desk.pasted:
        assert "all is well" in desk.run("vexpenses check production.ini")
    for piece, printed in reader.get("expect", {}).items():
        outputs = [output for command, output in desk.ran if piece in command]
        assert outputs and all(printed in output for output in outputs), (piece, outputs)
