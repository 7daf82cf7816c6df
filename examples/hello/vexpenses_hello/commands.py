from sqlalchemy import func, select

from vexpenses_core import bootstrap_app

from .models import Greeting


def count_greetings(args):
    env = bootstrap_app(args.config_uri, require_plugin="hello")
    request = env["request"]
    try:
        with request.tm:  # scripts open their own transaction
            total = request.dbsession.scalar(select(func.count(Greeting.id)))
    finally:
        env["closer"]()
    print(f"{total} greetings")


def add_commands(subparsers):
    parser = subparsers.add_parser(
        "hello-count",
        help="(hello plugin) print how many greetings are stored",
        description="Print how many greetings the hello example plugin has stored.",
    )
    parser.add_argument("config_uri", metavar="CONFIG")
    parser.set_defaults(func=count_greetings)
