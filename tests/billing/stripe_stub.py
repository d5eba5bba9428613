"""A local stand-in for Stripe's API (http.server in a thread) for the real `stripe` library to talk to.

Each test scripts what an endpoint answers, in order: a `(status, body)` pair with Stripe's real
error bodies (below), `DROP` (the connection closes before any answer: the library raises
APIConnectionError), or `DROP_AFTER` + a pair (the request is carried out and its answer stored
under its Idempotency-Key, then the connection closes: a lost answer). As at Stripe, a request
whose Idempotency-Key was answered before gets the same status and body again, with the header
`Idempotent-Replayed: true`, and is not carried out twice.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

DROP = "drop"
DROP_AFTER = "drop-after"


def stripe_error(status: int, **error) -> tuple[int, dict]:
    return status, {"error": error}


# Stripe's error bodies (https://docs.stripe.com/api/errors, /error-codes, /declines/codes).
CARD_DECLINED = stripe_error(
    402, type="card_error", code="card_declined", decline_code="generic_decline", message="Your card was declined.",
    charge="ch_3Stub0001", doc_url="https://stripe.com/docs/error-codes/card-declined",
    request_log_url="https://dashboard.stripe.com/test/logs/req_stub1",
    payment_intent={"id": "pi_3Stub0001", "object": "payment_intent", "status": "requires_payment_method"})
AUTHENTICATION_REQUIRED = stripe_error(
    402, type="card_error", code="authentication_required", decline_code="authentication_required",
    message="Your card was declined. This transaction requires authentication.", charge="ch_3Stub0002",
    doc_url="https://stripe.com/docs/error-codes/authentication-required",
    payment_intent={"id": "pi_3Stub0002", "object": "payment_intent", "status": "requires_payment_method",
                    "next_action": None, "last_payment_error": {"code": "authentication_required"}})
RATE_LIMIT = stripe_error(
    429, type="invalid_request_error", code="rate_limit",
    message="Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
    doc_url="https://stripe.com/docs/error-codes/rate-limit")
CHARGE_ALREADY_REFUNDED = stripe_error(
    400, type="invalid_request_error", code="charge_already_refunded",
    message="Charge ch_3Stub0003 has already been refunded.",
    doc_url="https://stripe.com/docs/error-codes/charge-already-refunded")
AMOUNT_TOO_LARGE = stripe_error(
    400, type="invalid_request_error", param="amount",
    message="Refund amount ($1,000.00) is greater than unrefunded amount on charge ($10.00)")
INVALID_API_KEY = stripe_error(
    401, type="invalid_request_error", message="Invalid API Key provided: sk_test_****ngrd")


@dataclass
class Seen:
    method: str
    path: str
    params: dict
    idempotency_key: str | None
    replayed: bool


@dataclass
class StripeStub:
    """What the tests script and read: `answers[(method, path)]` in order, `seen` every request."""

    answers: dict[tuple[str, str], list] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stored: dict[str, tuple[int, dict]] = field(default_factory=dict)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, method: str, path: str, *answers) -> None:
        self.answers.setdefault((method, path), []).extend(answers)

    def carried_out(self, path: str) -> list[Seen]:
        """The requests to `path` that were acted on (not replays)."""
        return [s for s in self.seen if s.path == path and not s.replayed]


def stripe_stub_start() -> tuple[StripeStub, ThreadingHTTPServer]:
    stub = StripeStub()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            params = dict(parse_qsl(self.rfile.read(length).decode())) if length else {}
            path = self.path.split("?", 1)[0]
            key = self.headers.get("Idempotency-Key")
            with stub.lock:
                replay = stub.stored.get(key) if key else None
                stub.seen.append(Seen(self.command, path, params, key, replay is not None))
                if replay is None:
                    queue = stub.answers.get((self.command, path)) or []
                    answer = queue.pop(0) if queue else (404, {"error": {"type": "invalid_request_error",
                                                                        "message": f"Unrecognized request URL ({path})"}})
                    drop = answer in (DROP,) or (isinstance(answer, tuple) and answer[0] == DROP_AFTER)
                    if isinstance(answer, tuple) and answer[0] == DROP_AFTER:
                        answer = answer[1]
                    if answer != DROP and key and self.command == "POST":
                        stub.stored[key] = answer
                else:
                    answer, drop = replay, False
            if drop:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            status, body = answer
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_stub{len(stub.seen)}")
            if replay is not None:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return stub, server
