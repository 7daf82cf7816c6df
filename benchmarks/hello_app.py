"""The baseline of the accounts benchmark: a bare Pyramid view under waitress.

No tweens, no database, no security policy: one route, one view, the JSON
renderer.  ``accounts.py`` serves it with the same waitress settings as the
real app and divides every figure by its req/s.

Run on its own with ``python benchmarks/hello_app.py --port 6544``.
"""

import argparse
import logging

from pyramid.config import Configurator


def hello(request):
    return {"status": True, "message": "Hello", "data": None}


def make_hello_app():
    with Configurator() as config:
        config.add_route("hello", "/hello")
        config.add_view(hello, route_name="hello", renderer="json")
    return config.make_wsgi_app()


def serve(app, host, port, threads):
    """Serve ``app`` with the waitress settings every benchmarked server uses."""
    import waitress

    # "Task queue depth is N" warnings only mean every thread is busy, which is
    # the point of a load test; both servers silence them alike.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    waitress.serve(app, host=host, port=port, threads=threads, ident="bench",
                   _quiet=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6544)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    serve(make_hello_app(), args.host, args.port, args.threads)


if __name__ == "__main__":
    main()
