"""A test app served over real HTTP, for a browser or an HTTP client."""

import contextlib
import threading


@contextlib.contextmanager
def live_server(make):
    """Serve a test app over real HTTP on a free port, for a browser.

    ``make(base_url)`` builds the TestApp, so that its ``vexpenses.base_url``
    (used in mailed links) names the server. Yields the TestApp with a
    ``base_url`` attribute.
    """
    from waitress.server import create_server

    holder = {}
    server = create_server(lambda environ, start: holder["app"](environ, start),
                           host="127.0.0.1", port=0, threads=4)
    base_url = f"http://127.0.0.1:{server.effective_port}"
    testapp = make(base_url)
    holder["app"] = testapp.app
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    testapp.base_url = base_url
    try:
        yield testapp
    finally:
        # The task threads stop first: a request still being served pulls
        # the trigger when it finishes, and pulling it once closed fails with
        # "Bad file descriptor". Then the sockets are closed from the loop's
        # own thread (closing them from here while the loop polls them fails
        # the same way); with every socket gone from its map, the loop returns.
        server.task_dispatcher.shutdown()
        server.trigger.pull_trigger(lambda: _close_all(server))
        thread.join(5)


def _close_all(server):
    for channel in list(server._map.values()):
        channel.close()
