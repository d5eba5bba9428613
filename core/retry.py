"""The errors a second try can cure, for every task's `autoretry_for`."""
import psycopg
from django.db import InterfaceError, OperationalError

# psycopg's own classes too: a COPY runs on the raw psycopg cursor, outside Django's error wrapper,
# so a connection dropped mid-COPY raises psycopg.OperationalError (AdminShutdown, "terminating
# connection due to administrator command"), not django.db.OperationalError.
TRANSIENT = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
             ConnectionError, TimeoutError)
