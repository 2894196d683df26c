"""moto's threaded server with the internal IAM routes in front of it."""

from __future__ import annotations

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from selfservice.local.iam.routes import IamRoutes

__all__ = ["IamMotoServer"]


class IamMotoServer(ThreadedMotoServer):
    """A ``ThreadedMotoServer`` whose application also serves ``/_selfservice/iam/``."""

    def _server_entry(self) -> None:
        app = IamRoutes(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
