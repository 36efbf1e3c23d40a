"""The fake VRChat server: a `ThreadingHTTPServer` over an in-memory world.

Implemented: login (Basic auth on GET /auth/user, the `auth` cookie, TOTP and email 2FA), notifications
(list, accept, hide), users, group invites and group members. Faults are injected per (method, path regex):
429 with or without Retry-After, 500, a hanging socket (before or after the request took effect), a
malformed body, missing fields. The pipeline websocket (`pipeline_url`, `?authToken=<auth cookie>`)
pushes each new notification as `{"type": "notification", "content": "<the notification as JSON>"}`;
`drop_pipeline()` closes every connection, `expire_sessions()` ends every session (connected clients get
VRChat's `{"err": …}` and are closed).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as serve_websocket

FaultKind = Literal["429", "500", "hang", "answer_lost", "not_json", "missing_fields", "late"]
TwoFactor = Literal["totp", "emailOtp"]
API_ROOT = "/api/1"


@dataclass
class Fault:
    """Answer the next `times` requests matching `method` and the `path` regex with `kind`; `late`: the
    request arrives `delay_s` after it was sent (slow on its way) and is then answered as usual."""

    method: str
    path: str
    kind: FaultKind
    times: int = 1
    retry_after: str | None = None
    delay_s: float = 0.0


@dataclass
class FakeUser:
    """A VRChat account as the fake knows it."""

    id: str
    display_name: str
    date_joined: str = "2020-01-01"
    tags: list[str] = field(default_factory=lambda: ["system_trust_basic", "system_trust_known"])


@dataclass(frozen=True)
class WireRequest:
    """One request as it arrived: what the tests count."""

    method: str
    path: str
    status: int
    at: float
    user_agent: str


@dataclass(frozen=True)
class Exchange:
    """One answer the fake gave, kept for validation against the OpenAPI spec."""

    method: str
    path: str
    query: str
    status: int
    content_type: str
    body: bytes


@dataclass
class _Session:
    verified: bool


class FakeVRChat:
    """The fake API. Use as a context manager; `url` is what `flows.vrchat.base_url` should be."""

    def __init__(
        self,
        *,
        username: str,
        password: str,
        totp_secret: str | None = None,
        two_factor: TwoFactor | None = None,
        email_code: str = "123456",
        group_id: str = "grp_00000000-0000-4000-8000-000000000001",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        hang_s: float = 5.0,
        port: int = 0,
    ) -> None:
        self.username, self.password = username, password
        self.totp_secret, self.two_factor, self.email_code = totp_secret, two_factor, email_code
        self.group_id = group_id
        self.clock, self.sleep = clock, sleep
        self.hang_s = hang_s
        self.me = FakeUser("usr_" + str(uuid.UUID(int=1)), "Celeste")
        self.users: dict[str, FakeUser] = {}
        self.notifications: list[dict[str, Any]] = []
        self.archive: dict[str, dict[str, Any]] = {}  # every notification ever sent, accepted ones too
        self.hidden: set[str] = set()
        self.friends: set[str] = set()
        self.group_status: dict[str, str] = {}
        self.blocked_from_group: set[str] = set()
        self.sessions: dict[str, _Session] = {}
        self.two_factor_tokens: set[str] = set()
        self.password_logins = 0
        self.requests: list[WireRequest] = []
        self.exchanges: list[Exchange] = []
        self.invite_posts: Counter[str] = Counter()
        self.accept_times: list[float] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self.pipeline_clients: list[tuple[str, ServerConnection]] = []
        self.pipeline_connections = 0
        self._pipeline = serve_websocket(self._pipeline_client, "127.0.0.1", 0)
        self._pipeline_thread = threading.Thread(target=self._pipeline.serve_forever, daemon=True)

    # --- lifecycle -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an IPv4 server's address
        return f"http://{host}:{port}{API_ROOT}"

    @property
    def pipeline_url(self) -> str:
        """What `flows.vrchat.pipeline_url` should be."""
        host, port = self._pipeline.socket.getsockname()[:2]
        return f"ws://{host}:{port}/"

    def __enter__(self) -> FakeVRChat:
        self._thread.start()
        self._pipeline_thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self.drop_pipeline()
        self._pipeline.shutdown()

    # --- the pipeline websocket ------------------------------------------------------------------------

    def _pipeline_client(self, connection: ServerConnection) -> None:
        token = parse_qs(urlsplit(connection.request.path if connection.request else "").query).get(
            "authToken", [""]
        )[0]
        with self.lock:
            valid = token in self.sessions and self.sessions[token].verified
            if valid:
                self.pipeline_clients.append((token, connection))
                self.pipeline_connections += 1
        if not valid:
            connection.send(json.dumps({"err": "authToken doesn't correspond with an active session"}))
            connection.close()
            return
        with contextlib.suppress(ConnectionClosed):
            for _ in connection:  # receive-only: whatever a client sends is ignored
                pass
        with self.lock:
            self.pipeline_clients = [(t, c) for t, c in self.pipeline_clients if c is not connection]

    def _push(self, notification: dict[str, Any]) -> None:
        message = json.dumps({"type": "notification", "content": json.dumps(notification)})
        with self.lock:
            clients = [connection for _, connection in self.pipeline_clients]
        for connection in clients:
            with contextlib.suppress(ConnectionClosed):
                connection.send(message)

    def drop_pipeline(self) -> None:
        """Close every pipeline connection (a network blip, a server restart)."""
        with self.lock:
            clients, self.pipeline_clients = self.pipeline_clients, []
        for _, connection in clients:
            connection.close()

    def expire_sessions(self) -> None:
        """End every session, as VRChat does after a while: the next call needs a new login."""
        with self.lock:
            self.sessions.clear()
            clients, self.pipeline_clients = self.pipeline_clients, []
        for _, connection in clients:
            with contextlib.suppress(ConnectionClosed):
                connection.send(json.dumps({"err": "authToken doesn't correspond with an active session"}))
            connection.close()

    # --- building the world ----------------------------------------------------------------------------

    def add_user(self, user: FakeUser) -> FakeUser:
        with self.lock:
            self.users[user.id] = user
        return user

    def add_notification(self, sender: FakeUser, kind: str = "friendRequest") -> str:
        """A notification from `sender` (adds the user too); returns its id: `frq_…` for a friend request,
        as VRChat's friend-request notifications have, `not_…` for the others."""
        self.add_user(sender)
        notification_id = ("frq_" if kind == "friendRequest" else "not_") + str(uuid.uuid4())
        with self.lock:
            self.notifications.append(
                {
                    "id": notification_id,
                    "type": kind,
                    "senderUserId": sender.id,
                    "receiverUserId": self.me.id,
                    "created_at": "2026-01-01T00:00:00.000Z",
                    "details": "{}",
                    "message": "",
                    "seen": False,
                }
            )
            self.archive[notification_id] = self.notifications[-1]
        self._push(self.archive[notification_id])
        return notification_id

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def count(self, method: str, pattern: str) -> int:
        """Requests that arrived for `method` and a path matching `pattern`."""
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and re.fullmatch(pattern, r.path))

    def pending_friend_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                n for n in self.notifications if n["type"] == "friendRequest" and n["id"] not in self.hidden
            ]

    # --- answering -------------------------------------------------------------------------------------

    def _record(self, method: str, path: str, status: int, headers: Any) -> None:
        with self.lock:
            self.requests.append(
                WireRequest(method, path, status, self.clock(), headers.get("User-Agent") or "")
            )

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.fullmatch(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def _session(self, cookies: SimpleCookie) -> _Session | None:
        token = cookies["auth"].value if "auth" in cookies else None
        return self.sessions.get(token) if token else None

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> _Answer:
        cookies: SimpleCookie = SimpleCookie(headers.get("Cookie") or "")
        if path == "/auth/user" and method == "GET":
            return self._current_user(headers, cookies)
        if path.startswith("/auth/twofactorauth/") and method == "POST":
            return self._verify_second_factor(path, cookies, body)
        session = self._session(cookies)
        if session is None or not session.verified:
            return _error(401, '"Missing Credentials"')
        routes: list[tuple[str, str, Callable[..., _Answer]]] = [
            ("GET", r"/auth/user/notifications", self._list_notifications),
            ("PUT", r"/auth/user/notifications/([^/]+)/accept", self._accept),
            ("PUT", r"/auth/user/notifications/([^/]+)/hide", self._hide),
            ("GET", r"/users/([^/]+)", self._user),
            ("POST", r"/groups/([^/]+)/invites", self._invite),
            ("GET", r"/groups/([^/]+)/members/([^/]+)", self._member),
        ]
        for route_method, pattern, answer in routes:
            match = re.fullmatch(pattern, path)
            if match and method == route_method:
                return answer(*match.groups(), query=query, body=body)
        return _error(404, "no such endpoint in the fake")

    def _current_user(self, headers: Any, cookies: SimpleCookie) -> _Answer:
        session = self._session(cookies)
        if session is not None and session.verified:
            return _json(200, self._current_user_body())
        authorization = headers.get("Authorization") or ""
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            if unquote(user) != self.username or unquote(password) != self.password:
                return _error(401, "Invalid Username/Email or Password")
            token = "authcookie_" + str(uuid.uuid4())
            bypass = "twoFactorAuth" in cookies and cookies["twoFactorAuth"].value in self.two_factor_tokens
            with self.lock:
                self.password_logins += 1
                self.sessions[token] = _Session(verified=self.two_factor is None or bypass)
            cookie = f"auth={token}; Path=/; HttpOnly"
            if not self.sessions[token].verified:
                return _json(200, self._requires_second_factor(), cookie)
            return _json(200, self._current_user_body(), cookie)
        if session is not None:
            return _json(200, self._requires_second_factor())
        return _error(401, '"Missing Credentials"')

    def _requires_second_factor(self) -> dict[str, Any]:
        kinds = ["emailOtp"] if self.two_factor == "emailOtp" else ["totp", "otp"]
        return {"requiresTwoFactorAuth": kinds}

    def _verify_second_factor(self, path: str, cookies: SimpleCookie, body: bytes) -> _Answer:
        session = self._session(cookies)
        if session is None:
            return _error(401, '"Missing Credentials"')
        code = str(json.loads(body or b"{}").get("code", ""))
        if path.endswith("/totp/verify"):
            ok = self.two_factor == "totp" and pyotp.TOTP(self.totp_secret or "").verify(code, valid_window=1)
        elif path.endswith("/emailotp/verify"):
            ok = self.two_factor == "emailOtp" and code == self.email_code
        else:
            return _error(404, "no such endpoint in the fake")
        if not ok:
            return _json(200, {"verified": False})
        token = "tfa_" + uuid.uuid4().hex
        with self.lock:
            session.verified = True
            self.two_factor_tokens.add(token)
        return _json(200, {"verified": True, "enabled": True}, f"twoFactorAuth={token}; Path=/; HttpOnly")

    def _list_notifications(self, *, query: dict[str, list[str]], body: bytes) -> _Answer:
        n = int(query.get("n", ["10"])[0])
        offset = int(query.get("offset", ["0"])[0])
        hidden = query.get("hidden", ["false"])[0] == "true"
        with self.lock:  # like VRChat, the (deprecated) type filter does nothing
            visible = [item for item in self.notifications if (item["id"] in self.hidden) == hidden]
            return _json(200, visible[offset : offset + min(n, 100)])

    def _accept(self, notification_id: str, *, query: dict[str, list[str]], body: bytes) -> _Answer:
        with self.lock:
            self.accept_times.append(self.clock())
            for item in self.notifications:
                if item["id"] == notification_id and item["type"] == "friendRequest":
                    self.notifications.remove(item)
                    self.friends.add(item["senderUserId"])
                    return _json(200, {"success": {"message": "Ok", "status_code": 200}})
        return _error(404, "that friend request could not be found")

    def _hide(self, notification_id: str, *, query: dict[str, list[str]], body: bytes) -> _Answer:
        # The spec declares only 200 (and 401): hiding one that was accepted meanwhile answers 200 too.
        with self.lock:
            item = self.archive.get(notification_id)
            if item is None:
                return _error(404, "Notification not found")  # an id never sent: outside the spec
            self.hidden.add(notification_id)
            return _json(200, item)

    def _user_body(self, user: FakeUser) -> dict[str, Any]:
        return {
            "ageVerificationStatus": "hidden",
            "ageVerified": False,
            "allowAvatarCopying": False,
            "bio": "",
            "bioLinks": [],
            "currentAvatarImageUrl": "",
            "currentAvatarTags": [],
            "currentAvatarThumbnailImageUrl": "",
            "date_joined": user.date_joined,
            "developerType": "none",
            "displayName": user.display_name,
            "friendKey": "",
            "id": user.id,
            "isFriend": user.id in self.friends,
            "last_activity": "",
            "last_login": "",
            "last_platform": "standalonewindows",
            "profilePicOverride": "",
            "profilePicOverrideThumbnail": "",
            "pronouns": "",
            "state": "offline",
            "status": "offline",
            "statusDescription": "",
            "tags": list(user.tags),
            "userIcon": "",
        }

    def _current_user_body(self) -> dict[str, Any]:
        body = self._user_body(self.me)
        body.update(
            {
                "acceptedTOSVersion": 7,
                "currentAvatar": "avtr_" + str(uuid.UUID(int=2)),
                "emailVerified": True,
                "friendGroupNames": [],
                "friends": sorted(self.friends),
                "hasBirthday": False,
                "hasEmail": True,
                "hasLoggedInFromClient": True,
                "hasPendingEmail": False,
                "homeLocation": "wrld_" + str(uuid.UUID(int=3)),
                "isAdult": True,
                "last_login": "2026-01-01T00:00:00.000Z",
                "last_mobile": None,
                "obfuscatedEmail": "c****e@example.com",
                "obfuscatedPendingEmail": "",
                "oculusId": "",
                "pastDisplayNames": [],
                "pronounsHistory": [],
                "statusFirstTime": False,
                "statusHistory": [],
                "steamDetails": {},
                "steamId": "",
                "twoFactorAuthEnabled": self.two_factor is not None,
                "unsubscribe": False,
                "usesGeneratedPassword": False,
            }
        )
        body.pop("last_activity")
        return body

    def _user(self, user_id: str, *, query: dict[str, list[str]], body: bytes) -> _Answer:
        with self.lock:
            user = self.users.get(user_id)
            if user is None:  # an id never in the world (the flows ask only for senders): outside the spec
                return _error(404, "User not found")
            return _json(200, self._user_body(user))

    def _invite(self, group_id: str, *, query: dict[str, list[str]], body: bytes) -> _Answer:
        user_id = str(json.loads(body or b"{}").get("userId", ""))
        with self.lock:
            self.invite_posts[user_id] += 1
            if group_id != self.group_id:
                return _error(404, "Can't find group!")
            name = self.users[user_id].display_name if user_id in self.users else user_id
            if user_id in self.blocked_from_group:
                return _error(403, "You can't invite that user.")
            if self.group_status.get(user_id) == "member":
                return _error(400, f"User {name} is already a member of this group.")
            if self.group_status.get(user_id) == "invited":
                return _error(400, f"User {name} is already invited.")
            self.group_status[user_id] = "invited"
        return _Answer(200, b"", "")

    def _member(self, group_id: str, user_id: str, *, query: dict[str, list[str]], body: bytes) -> _Answer:
        with self.lock:
            status = self.group_status.get(user_id)
        if group_id != self.group_id:
            return _error(404, "Can't find group!")
        if status is None:
            return _json(200, None)  # the spec's answer for a user who is not in the group
        return _json(
            200,
            {
                "groupId": group_id,
                "id": "gmem_" + str(uuid.uuid5(uuid.NAMESPACE_URL, user_id)),
                "isRepresenting": False,
                "isSubscribedToAnnouncements": False,
                "joinedAt": None,
                "lastPostReadAt": None,
                "mRoleIds": [],
                "membershipStatus": status,
                "roleIds": [],
                "userId": user_id,
                "visibility": "visible",
            },
        )


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    set_cookie: str
    retry_after: str | None = None


def _json(status: int, payload: Any, set_cookie: str = "") -> _Answer:
    # Compact separators, as VRChat sends them (the client recognises 2FA answers by their exact bytes).
    return _Answer(status, json.dumps(payload, separators=(",", ":")).encode(), set_cookie)


def _error(status: int, message: str) -> _Answer:
    return _json(status, {"error": {"message": message, "status_code": status}})


def _strip_fields(answer: _Answer) -> _Answer:
    payload = json.loads(answer.body)
    items = payload if isinstance(payload, list) else [payload]
    for item in items:
        for key in ("displayName", "tags", "senderUserId", "id"):
            item.pop(key, None)
    return _json(answer.status, payload, answer.set_cookie)


def _handler_for(fake: FakeVRChat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one segment (no Nagle / delayed-ACK stalls)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = parts.path[len(API_ROOT) :] if parts.path.startswith(API_ROOT) else parts.path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = fake._fault_for(method, path)
            if fault is not None and fault.kind == "late":
                fake.sleep(fault.delay_s)  # on the fake's clock: an injected clock moves on
            if fault is not None and fault.kind == "answer_lost":
                fake.handle(method, path, parse_qs(parts.query), self.headers, body)
            if fault is not None and fault.kind in ("hang", "answer_lost"):
                fake._record(method, path, 0, self.headers)
                fake._stop.wait(fake.hang_s)
                self.close_connection = True
                return
            if fault is not None and fault.kind in ("429", "500"):
                status = int(fault.kind)
                answer = _error(status, "Too many requests" if status == 429 else "Internal Server Error")
                answer = _Answer(answer.status, answer.body, "", fault.retry_after)
            else:
                answer = fake.handle(method, path, parse_qs(parts.query), self.headers, body)
                if fault is not None and fault.kind == "not_json":
                    answer = _Answer(200, b"<html>upstream error</html>", "")
                elif fault is not None and fault.kind == "missing_fields":
                    answer = _strip_fields(answer)
            fake._record(method, path, answer.status, self.headers)
            with fake.lock:
                fake.exchanges.append(
                    Exchange(method, path, parts.query, answer.status, "application/json", answer.body)
                )
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            if answer.set_cookie:
                self.send_header("Set-Cookie", answer.set_cookie)
            if answer.retry_after is not None:
                self.send_header("Retry-After", answer.retry_after)
            self.end_headers()
            self.wfile.write(answer.body)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

    return Handler
