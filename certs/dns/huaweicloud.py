"""Huawei Cloud DNS (API v2), native because dns-lexicon has no Huawei Cloud provider.

Requests are signed with an access key (AK/SK) as Huawei's "API Request Signing Guide"
describes (SDK-HMAC-SHA256): a canonical request made of the method, the URI (each
segment percent-encoded, ending in "/"), the sorted query string, the signed headers
(lower-case name:trimmed value) and the SHA-256 of the body; a string to sign
"SDK-HMAC-SHA256\\n<X-Sdk-Date>\\n<SHA-256 of the canonical request>"; and the hex
HMAC-SHA256 of that string keyed with the secret key, sent as
`Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<names>, Signature=<hex>`.

Or, as acme.sh's dns_huaweicloud does, with an IAM user's password: a Keystone token
(`POST {iam}/v3/auth/tokens`, password method, scoped to the region's project; the
token comes back in `X-Subject-Token`) sent as `X-Auth-Token` on the DNS calls.

Huawei keeps one record set per name and type, so a second value under a name (an apex
and a wildcard certificate share `_acme-challenge.example.com`) is added to the
existing record set, and clean-up takes out only its own value, deleting the record
set when no value is left.
"""

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

import requests
from django.utils.translation import gettext_lazy as _

from certs.dns.base import DnsProvider, DnsProviderError, Field

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DEFAULT_REGION = "cn-north-4"
DEFAULT_IAM_ENDPOINT = "https://iam.myhuaweicloud.com"
TIMEOUT = 30
ERROR_CODE = re.compile(r"[A-Za-z]{2,16}\.\d{1,8}")


def _encode(text):
    return quote(text, safe="~")


def canonical_uri(path):
    """Every segment percent-encoded; always ends with '/' (the request itself need not)."""
    uri = "/".join(_encode(unquote(segment)) for segment in path.split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(params):
    """`params`: (name, value) pairs, sorted by name then value, each percent-encoded."""
    return "&".join(f"{_encode(k)}={_encode(str(v))}" for k, v in sorted(params))


def canonical_request(method, path, params, headers, body):
    """The canonical request and the signed header names, from lower-case `headers`."""
    signed = sorted(headers)
    lines = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    canonical = "\n".join([
        method.upper(), canonical_uri(path), canonical_query(params), lines, ";".join(signed),
        hashlib.sha256(body).hexdigest(),
    ])
    return canonical, ";".join(signed)


def signature(secret_key, sdk_date, canonical):
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(access_key, secret_key, method, path, params, headers, body):
    """The Authorization header value; `headers` (lower-case) must include host and x-sdk-date."""
    canonical, signed = canonical_request(method, path, params, headers, body)
    sig = signature(secret_key, headers["x-sdk-date"], canonical)
    return f"{ALGORITHM} Access={access_key}, SignedHeaders={signed}, Signature={sig}"


class HuaweiCloudProvider(DnsProvider):
    code = "huaweicloud"
    label = _("Huawei Cloud DNS")
    help = _("An access key (AK/SK), or the name, password and account name of an IAM user, "
             "allowed to manage DNS (DNS FullAccess).")
    ttl = 300  # Huawei's default TTL for new record sets
    fields = (
        Field("access_key_id", _("Access key ID (AK)"), required=False,
              help=_("With the secret access key; or leave both blank and give an IAM user")),
        Field("secret_access_key", _("Secret access key (SK)"), sensitive=True, required=False),
        Field("iam_username", _("IAM user name"), required=False,
              help=_("Instead of an access key: an IAM user, its password and its account name")),
        Field("iam_password", _("IAM user password"), sensitive=True, required=False),
        Field("iam_domain_name", _("Account name"), required=False,
              help=_("The Huawei Cloud account (IAM domain) the user belongs to")),
        Field("iam_endpoint", _("IAM endpoint"), required=False, default=DEFAULT_IAM_ENDPOINT),
        Field("region", _("Region"), required=False, default=DEFAULT_REGION,
              help=_("The region whose DNS endpoint to use, e.g. cn-north-4 or ap-southeast-1")),
        Field("project_id", _("Project ID"), required=False,
              help=_("Sent as X-Project-Id; needed only when the region has more than one project")),
        Field("endpoint", _("API endpoint"), required=False,
              help=_("Leave blank for https://dns.<region>.myhuaweicloud.com")),
        Field("zone", _("Zone"), required=False,
              help=_("The public zone the records go in, e.g. example.com; found from the record name when blank")),
    )

    # Either credential set; its fields are declared not required, and checked here as a set.
    ACCESS_KEY = ("access_key_id", "secret_access_key")
    IAM_USER = ("iam_username", "iam_password", "iam_domain_name")
    alternatives = (ACCESS_KEY, IAM_USER)

    def __init__(self, values):
        super().__init__(values)
        self.token = ""
        by_key = [name for name in self.ACCESS_KEY if not self.values[name]]
        by_user = [name for name in self.IAM_USER if not self.values[name]]
        if by_key and by_user:
            labels = {f.name: str(f.label) for f in self.fields}
            started_user = len(by_user) < len(self.IAM_USER)  # name the half the user began to fill in
            missing = [labels[name] for name in (by_user if started_user else by_key)]
            raise DnsProviderError(_("Give an access key (AK and SK) or an IAM user (name, password and account "
                                     "name). Missing: %(fields)s") % {"fields": ", ".join(missing)})
        self.use_access_key = not by_key
        endpoint = self.values["endpoint"] or f"https://dns.{self.values['region']}.myhuaweicloud.com"
        parts = urlsplit(endpoint)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.netloc

    # -- HTTP --------------------------------------------------------------------------

    def _request(self, method, path, params=(), payload=None):
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = {
            "content-type": "application/json",
            "host": self.host,
            "x-sdk-date": datetime.now(UTC).strftime(DATE_FORMAT),
        }
        if self.values["project_id"]:
            headers["x-project-id"] = self.values["project_id"]
        if self.use_access_key:
            headers["authorization"] = authorization(
                self.values["access_key_id"], self.values["secret_access_key"], method, path, list(params),
                headers, body)
        else:
            headers["x-auth-token"] = self._token()
        query = canonical_query(list(params))
        response = self._send(method, f"{self.base}{path}" + (f"?{query}" if query else ""), body, headers)
        if response.status_code >= 400:
            raise DnsProviderError(_("Huawei Cloud DNS refused %(method)s %(path)s (HTTP %(status)s): %(error)s")
                                   % {"method": method, "path": path, "status": response.status_code,
                                      "error": self._scrub(self._error_text(response))})
        return response.json() if response.content else {}

    def _send(self, method, url, body, headers):
        try:
            return requests.request(method, url, data=body or None, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise DnsProviderError(_("No answer from %(endpoint)s: %(error)s")
                                   % {"endpoint": urlsplit(url).netloc, "error": self._scrub(str(exc))}) from None

    def _token(self):
        """An IAM token for the user, fetched once per provider object (tokens last 24 hours)."""
        if self.token:
            return self.token
        payload = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.values["iam_username"], "password": self.values["iam_password"],
                "domain": {"name": self.values["iam_domain_name"]}}}},
            "scope": {"project": {"name": self.values["region"]}},
        }}
        iam = self.values["iam_endpoint"].rstrip("/")
        response = self._send("POST", f"{iam}/v3/auth/tokens", json.dumps(payload).encode(),
                              {"content-type": "application/json;charset=utf8"})
        if response.status_code >= 400 or not response.headers.get("X-Subject-Token"):
            raise DnsProviderError(_("Huawei Cloud IAM refused the sign-in of %(user)s (HTTP %(status)s): %(error)s")
                                   % {"user": self.values["iam_username"], "status": response.status_code,
                                      "error": self._scrub(self._error_text(response))})
        self.token = response.headers["X-Subject-Token"]
        return self.token

    @staticmethod
    def _error_text(response):
        """Huawei's error code (DNS.0302, APIGW.0301), which its documentation explains. Never the
        body itself: the endpoint is the user's to choose, and a page must not read back what
        some other server answered."""
        try:
            data = response.json()
        except ValueError:
            data = None
        code = str(data.get("error_code") or data.get("code") or "") if isinstance(data, dict) else ""
        return code if ERROR_CODE.fullmatch(code) else _("no error code")

    def _scrub(self, text):
        for secret in (self.values["secret_access_key"], self.values["iam_password"], self.token):
            text = text.replace(secret, "***") if secret else text
        return text

    # -- zones and record sets ---------------------------------------------------------

    def _zone(self, name):
        """(zone id, zone name with final dot) of the public zone that holds `name`."""
        if self.values["zone"]:
            candidates = [self.values["zone"].rstrip(".").lower()]
        else:
            labels = name.split(".")
            candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)]
        for candidate in candidates:
            wanted = candidate + "."
            # the name filter matches parts of names too; keep the exact one
            data = self._request("GET", "/v2/zones", [("type", "public"), ("name", wanted)])
            for zone in data.get("zones", []):
                if zone.get("name", "").lower() == wanted:
                    return zone["id"], wanted
        raise DnsProviderError(_("No Huawei Cloud DNS public zone holds %(name)s (tried %(zones)s)")
                               % {"name": name, "zones": ", ".join(candidates) or "-"})

    def _recordset(self, zone_id, fqdn):
        data = self._request("GET", f"/v2/zones/{zone_id}/recordsets", [("type", "TXT"), ("name", fqdn)])
        for recordset in data.get("recordsets", []):
            if recordset.get("type") == "TXT" and recordset.get("name", "").lower() == fqdn:
                return recordset
        return None

    def _add(self, zone_id, fqdn, quoted):
        recordset = self._recordset(zone_id, fqdn)
        if recordset is None:
            try:
                created = self._request("POST", f"/v2/zones/{zone_id}/recordsets", payload={
                    "name": fqdn, "type": "TXT", "ttl": self.ttl, "records": [quoted],
                    "description": "ACME DNS-01 challenge",
                })
                return created["id"]
            except DnsProviderError:
                # Another worker may have created the record set since our look-up:
                # then add to it; otherwise the create really failed.
                recordset = self._recordset(zone_id, fqdn)
                if recordset is None:
                    raise
        if quoted not in recordset.get("records", []):
            self._request("PUT", f"/v2/zones/{zone_id}/recordsets/{recordset['id']}", payload={
                "records": recordset.get("records", []) + [quoted], "ttl": recordset.get("ttl", self.ttl),
            })
        return recordset["id"]

    # -- the contract ------------------------------------------------------------------

    def present(self, name, value):
        fqdn = name.rstrip(".").lower() + "."
        zone_id, zone = self._zone(fqdn.rstrip("."))
        recordset_id = self._add(zone_id, fqdn, f'"{value}"')
        return {"zone": zone, "zone_id": zone_id, "recordset_id": recordset_id, "name": fqdn}

    def cleanup(self, name, value, state):
        fqdn = ((state or {}).get("name") or name).rstrip(".").lower() + "."
        zone_id = (state or {}).get("zone_id") or self._zone(fqdn.rstrip("."))[0]
        recordset = self._recordset(zone_id, fqdn)
        quoted = f'"{value}"'
        if recordset is None or quoted not in recordset.get("records", []):
            return  # already gone: clean-up is safe to run twice
        remaining = [r for r in recordset["records"] if r != quoted]
        path = f"/v2/zones/{zone_id}/recordsets/{recordset['id']}"
        if remaining:
            self._request("PUT", path, payload={"records": remaining, "ttl": recordset.get("ttl", self.ttl)})
        else:
            self._request("DELETE", path)

    def check(self):
        if self.values["zone"]:
            self._zone(self.values["zone"])
        else:
            self._request("GET", "/v2/zones", [("type", "public"), ("limit", "1")])
