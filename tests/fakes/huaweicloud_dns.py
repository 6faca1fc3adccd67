"""A fake of Huawei Cloud DNS API v2 on 127.0.0.1, for testing HuaweiCloudProvider.

It serves the calls the provider makes: list public zones (`GET /v2/zones`), list a
zone's record sets (`GET /v2/zones/{id}/recordsets`), create (`POST`), update (`PUT`)
and delete (`DELETE .../recordsets/{id}`). Every request must carry a valid AK/SK
signature (SDK-HMAC-SHA256), which it recomputes from the request as received on the
wire: path, raw query string, the signed headers and the body. Record sets live in
memory; like Huawei, there is one record set per name and type, and TXT values must be
quoted. Error codes are the fake's own, not Huawei's.

It is also the IAM endpoint for `users` ({(account name, user name): password}):
`POST /v3/auth/tokens` with the password method answers 201 with a token in
X-Subject-Token, and a DNS request carrying that token as X-Auth-Token needs no
signature. `token_requests` counts the sign-ins.

    with FakeHuaweiDns("AK", "SK", zones=["example.com."]) as fake:
        provider = HuaweiCloudProvider({..., "endpoint": fake.url})
"""

import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from certs.dns import huaweicloud

MAX_CLOCK_SKEW = timedelta(minutes=15)
_AUTHORIZATION = re.compile(
    r"^SDK-HMAC-SHA256 Access=(?P<access>[^,]+), SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]+)$"
)


class FakeHuaweiDns:
    def __init__(self, access_key, secret_key, zones=("example.com.",), users=None):
        self.access_key = access_key
        self.secret_key = secret_key
        self.users = dict(users or {})
        self.tokens = {}  # token -> the scope's project name
        self.token_requests = []  # the JSON body of every sign-in
        self.zones = {uuid.uuid4().hex: name for name in zones}
        self.recordsets = {}  # id -> record set dict
        self.requests = []  # (method, path) of every authenticated request
        for zone_id, zone in self.zones.items():  # every zone has its SOA and NS, as on Huawei
            self._store(zone_id, zone, "SOA", ["ns1.example.net. hostmaster.example.net. 1 7200 900 1209600 300"])
            self._store(zone_id, zone, "NS", ["ns1.example.net.", "ns2.example.net."])
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-huaweicloud-dns", daemon=True)

    @property
    def url(self):
        host, port = self._server.server_address
        return f"http://{host}:{port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def txt_values(self, name):
        """The values of the TXT record set `name` (final dot optional), unquoted; [] if none."""
        fqdn = name.rstrip(".") + "."
        for recordset in self.recordsets.values():
            if recordset["name"] == fqdn and recordset["type"] == "TXT":
                return [value.strip('"') for value in recordset["records"]]
        return []

    def _store(self, zone_id, name, rtype, records, ttl=300):
        recordset = {"id": uuid.uuid4().hex, "zone_id": zone_id, "zone_name": self.zones[zone_id], "name": name,
                     "type": rtype, "ttl": ttl, "records": list(records), "status": "PENDING_CREATE",
                     "default": rtype in ("SOA", "NS")}
        self.recordsets[recordset["id"]] = recordset
        return recordset

    # -- HTTP --------------------------------------------------------------------------

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, payload, headers=()):
                body = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "POST" and urlsplit(self.path).path == "/v3/auth/tokens":
                    return self._reply(*fake._sign_in(body))
                problem = fake._authentication_problem(self.command, self.path, self.headers, body)
                if problem:
                    return self._reply(401, {"error_code": "FAKE.0301", "error_msg": problem})
                with fake._lock:
                    fake.requests.append((self.command, urlsplit(self.path).path))
                    status, payload = fake._route(self.command, self.path, body)
                return self._reply(status, payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        return Handler

    def _sign_in(self, body):
        data = json.loads(body)
        self.token_requests.append(data)
        user = data["auth"]["identity"]["password"]["user"]
        if self.users.get((user["domain"]["name"], user["name"])) != user["password"]:
            return 401, {"error": {"code": 401, "message": "The username or password is wrong."}}
        token = uuid.uuid4().hex
        self.tokens[token] = data["auth"]["scope"]["project"]["name"]
        return 201, {"token": {"methods": ["password"]}}, [("X-Subject-Token", token)]

    def _authentication_problem(self, method, raw_path, headers, body):
        if headers.get("X-Auth-Token") is not None:
            return None if headers["X-Auth-Token"] in self.tokens else "invalid token"
        match = _AUTHORIZATION.match(headers.get("Authorization", ""))
        if not match:
            return "missing or malformed Authorization header"
        if match["access"] != self.access_key:
            return "unknown access key"
        signed = match["signed"].split(";")
        if "host" not in signed or "x-sdk-date" not in signed:
            return "host and x-sdk-date must be signed"
        if any(headers.get(name) is None for name in signed):
            return "a signed header is missing"
        try:
            sent_at = datetime.strptime(headers["X-Sdk-Date"], huaweicloud.DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return "bad X-Sdk-Date"
        if abs(datetime.now(UTC) - sent_at) > MAX_CLOCK_SKEW:
            return "signature expired"
        parts = urlsplit(raw_path)
        params = parse_qsl(parts.query, keep_blank_values=True)
        signed_headers = {name: headers[name] for name in signed}
        canonical, _ = huaweicloud.canonical_request(method, parts.path, params, signed_headers, body)
        expected = huaweicloud.signature(self.secret_key, headers["X-Sdk-Date"], canonical)
        if expected != match["signature"]:
            return "verify aksk signature fail"
        return None

    def _route(self, method, raw_path, body):
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query))
        segments = parts.path.strip("/").split("/")
        if segments[:2] != ["v2", "zones"]:
            return 404, {"code": "FAKE.0404", "message": "no such API"}
        if len(segments) == 2 and method == "GET":
            zones = [{"id": zone_id, "name": name, "zone_type": "public"} for zone_id, name in self.zones.items()
                     if query.get("type", "public") == "public" and query.get("name", "") in name]
            return 200, {"zones": zones[: int(query.get("limit", 500))], "metadata": {"total_count": len(zones)}}
        if len(segments) < 4 or segments[3] != "recordsets" or segments[2] not in self.zones:
            return 404, {"code": "FAKE.0404", "message": "zone not found"}
        zone_id = segments[2]
        if len(segments) == 4 and method == "GET":
            found = [r for r in self.recordsets.values() if r["zone_id"] == zone_id
                     and query.get("type", r["type"]) == r["type"] and query.get("name", "") in r["name"]]
            return 200, {"recordsets": found, "metadata": {"total_count": len(found)}}
        if len(segments) == 4 and method == "POST":
            data = json.loads(body)
            problem = self._invalid(zone_id, data, creating=True)
            if problem:
                return 400, {"code": "FAKE.0400", "message": problem}
            return 202, self._store(zone_id, data["name"], data["type"], data["records"], data.get("ttl", 300))
        recordset = self.recordsets.get(segments[4]) if len(segments) == 5 else None
        if recordset is None or recordset["zone_id"] != zone_id:
            return 404, {"code": "FAKE.0404", "message": "record set not found"}
        if method == "PUT":
            data = json.loads(body)
            problem = self._invalid(zone_id, {**recordset, **data}, creating=False)
            if problem:
                return 400, {"code": "FAKE.0400", "message": problem}
            recordset.update(records=list(data.get("records", recordset["records"])),
                             ttl=data.get("ttl", recordset["ttl"]), status="PENDING_UPDATE")
            return 202, recordset
        if method == "DELETE":
            if recordset["default"]:
                return 400, {"code": "FAKE.0400", "message": "default record sets cannot be deleted"}
            del self.recordsets[recordset["id"]]
            return 202, {**recordset, "status": "PENDING_DELETE"}
        return 405, {"code": "FAKE.0405", "message": "method not allowed"}

    def _invalid(self, zone_id, data, creating):
        zone = self.zones[zone_id]
        name = data.get("name", "")
        if not name.endswith(".") or not (name == zone or name.endswith("." + zone)):
            return f"name must be a fully qualified name in {zone}"
        if not data.get("records"):
            return "records must not be empty"
        if data.get("type") == "TXT" and not all(len(r) >= 2 and r[0] == r[-1] == '"' for r in data["records"]):
            return "TXT values must be quoted"
        if creating and any(r["name"] == name and r["type"] == data.get("type") for r in self.recordsets.values()):
            return "record set already exists"
        return None
