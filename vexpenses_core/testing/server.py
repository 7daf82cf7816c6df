"""A test app served over real HTTP, for a browser or an HTTP client."""

import contextlib
import logging
import threading

log = logging.getLogger(__name__)


@contextlib.contextmanager
def live_server(make):
    """Serve a test app over real HTTP on a free port, for a browser.

    ``make(base_url)`` builds the TestApp, so that its ``vexpenses.base_url``
    (used in mailed links) names the server. Yields the TestApp with
    ``base_url`` and ``server`` (waitress's) attributes.
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
    testapp.server = server
    try:
        yield testapp
    finally:
        # The task threads stop first: a request still being served pulls
        # the trigger when it finishes, and pulling it once closed fails with
        # "Bad file descriptor". Then the sockets are closed from the loop's
        # own thread (closing them from here while the loop polls them fails
        # the same way); with every socket gone from its map, the loop returns.
        server.task_dispatcher.shutdown()
        try:
            server.trigger.pull_trigger(lambda: _close_all(server))
        except OSError:
            # The loop closed its trigger already (waitress closes a channel
            # whose handler raised), so nothing can wake it. An empty map
            # ends it at its next turn; the sockets are closed once it has.
            log.warning("the test server's trigger was closed before teardown")
            channels = list(server._map.values())
            server._map.clear()
            thread.join(5)
            for channel in channels:
                _close(channel)
        thread.join(5)


def _close_all(server):
    for channel in list(server._map.values()):
        _close(channel)


def _close(channel):
    try:
        channel.close()
    except OSError:
        pass  # closed already
