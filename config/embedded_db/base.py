"""Django's PostgreSQL backend for the embedded cluster: it starts the cluster (or finds it running)
before each new connection, and connects to the socket where the server listens."""
from django.db.backends.postgresql import base

from . import PGDATA, ensure


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        conn_params["host"] = str(ensure(PGDATA))  # a running server costs a file read and a connect()
        return super().get_new_connection(conn_params)
