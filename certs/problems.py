"""Failures in words a person can act on: a short cause and what to check next, in the reader's
language, with the raw text (an exception, the CA's own words) kept apart for a fold-out.

A failure is stored as a message id (an English msgid marked with gettext_noop) and JSON params,
like an order log line, and put into words when it is read: `as_json()` goes in a row's JSON
field (Order.failure, Certificate.last_failure, InstallTarget.last_failure, Site.config_failure)
beside its English text (`english()`, for scripts, mail and search); pages show it with the
template filter `failure` (certs/templatetags/failures.py). Params with a meaning here: `raw`
(the text as it came), `problem` (an ACME problem code, e.g. "unauthorized"), `method`
("http-01" / "dns-01": a validation hint depends on it), `name`, `record`, `host`. Rows stored
before this (JSON NULL) show their text as it is.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.utils.html import format_html
from django.utils.translation import gettext, gettext_noop, override

from certs.acme import AcmeError

# The CA was not reached, or answered without a problem document (AcmeError.cause).
UNREACHED = {
    "resolve": gettext_noop(
        "Cannot resolve the CA's name %(host)s: check this server's DNS resolver "
        "(/etc/resolv.conf), or use another CA (such as ZeroSSL)."),
    "connect": gettext_noop(
        "Cannot connect to the CA: check that this server can reach %(host)s "
        "(firewall, outbound proxy), or use another CA (such as ZeroSSL) or a proxy."),
    "timeout": gettext_noop(
        "The CA did not answer in time: %(host)s may be blocked or slow from this "
        "server. Try again later, or use another CA (such as ZeroSSL) or a proxy."),
    "tls": gettext_noop(
        "The CA's TLS certificate could not be verified (%(host)s): check the server's "
        "clock and its CA certificates, and whether a proxy intercepts HTTPS; for a "
        "private or test CA set CERTPANEL_CA_BUNDLE."),
    "http": gettext_noop(
        "The CA answered HTTP %(status)s without saying why: it may be down or "
        "overloaded. Try again later."),
}

# What to check for each ACME problem type (RFC 8555 6.7): by (type, challenge method) where the
# method matters, else by (type, "").
HINTS = {
    ("unauthorized", "dns-01"): gettext_noop(
        "The TXT record was not found at the authoritative servers: check that "
        "%(record)s exists with the value shown (a console that asks for the host "
        "record, like Aliyun's or DNSPod's, wants the name without the zone), that "
        "it is in the zone the domain's NS records name, and that no old value is "
        "left."),
    ("unauthorized", "http-01"): gettext_noop(
        "The CA did not read the expected answer at http://%(name)s/.well-known/"
        "acme-challenge/: check that the name's A/AAAA record points to this "
        "server and that no CDN, other server or redirect answers for it."),
    ("unauthorized", ""): gettext_noop(
        "The CA refused: check that the names are yours and the account is in order."),
    ("dns", ""): gettext_noop(
        "The CA could not look up the domain in DNS: check that the domain is "
        "registered, that its NS records are right and its name servers answer "
        "(CAA queries too)."),
    ("connection", "http-01"): gettext_noop(
        "The CA could not reach http://%(name)s/.well-known/acme-challenge/: "
        "check port 80, the firewall and the DNS A/AAAA record."),
    ("connection", ""): gettext_noop(
        "The CA could not connect to the server it validates: check that it answers "
        "from the internet (port 80 for HTTP-01, the name servers for DNS-01)."),
    ("tls", ""): gettext_noop(
        "The CA's TLS connection to the name failed: check port 443 and that the "
        "name points to this server."),
    ("incorrectResponse", ""): gettext_noop(
        "The CA received a wrong answer to the challenge: check that "
        "the name points to this server and nothing else answers for "
        "it (a CDN, another server)."),
    ("caa", ""): gettext_noop(
        "A CAA record of the domain does not allow this CA: add one that does (e.g. "
        "0 issue \"letsencrypt.org\"), or remove the one that forbids it."),
    ("rateLimited", ""): gettext_noop(
        "The CA's rate limit was reached: wait until the time the CA names "
        "before trying again; test with a staging CA."),
    ("rejectedIdentifier", ""): gettext_noop(
        "The CA will not issue for one of these names (a blocked, "
        "internal or misspelt name): check them, or use another CA."),
    ("malformed", ""): gettext_noop(
        "The CA found the request malformed: check the names (no spaces or "
        "invalid characters) and, if given, the EAB values."),
    ("badNonce", ""): gettext_noop(
        "The CA kept rejecting the request's nonce: try again; check the "
        "server's clock and any proxy between it and the CA."),
    ("externalAccountRequired", ""): gettext_noop(
        "This CA requires External Account Binding: give the "
        "EAB key id and HMAC key from your account at the CA."),
    ("serverInternal", ""): gettext_noop("The CA had an internal error: try again later."),
    ("accountDoesNotExist", ""): gettext_noop(
        "The CA no longer knows this ACME account: register an account again."),
    ("orderNotReady", ""): gettext_noop(
        "The order was not ready to be finalized: request the certificate again."),
    ("invalidContact", ""): gettext_noop(
        "The CA refused the e-mail address: give a valid one, or none."),
    ("unsupportedContact", ""): gettext_noop(
        "The CA refused the e-mail address: give a valid one, or none."),
    ("userActionRequired", ""): gettext_noop(
        "The CA asks for an action on its website (new terms of service?): see the details."),
    ("badCSR", ""): gettext_noop(
        "The CA refused the certificate request: check the names and the key type."),
}


@dataclass(frozen=True)
class Failure:
    """A failure to store (`message`, `params`) or to show (`lead`, `hint`, `raw`)."""

    message: str
    params: dict = field(default_factory=dict)

    @property
    def lead(self) -> str:
        """The cause, in the active language."""
        return _fill(gettext(self.message), self.params)

    @property
    def hint(self) -> str:
        """What to check, in the active language, or ""."""
        problem = self.params.get("problem") or ""
        hint = HINTS.get((problem, self.params.get("method") or "")) or HINTS.get((problem, ""))
        return _fill(gettext(hint), self.params) if hint else ""

    @property
    def raw(self) -> str:
        return self.params.get("raw") or ""

    @property
    def code(self) -> str:
        """For scripts: why the CA was not reached ("resolve", "connect", "timeout", "tls",
        "http"), or the CA's problem code ("unauthorized"); "" for the panel's own failures."""
        return self.params.get("code") or ""

    @property
    def ca_error(self) -> dict:
        """The API's `ca_error`: the code and the CA's (or the network's) own words, for scripts."""
        return {"code": self.code, "raw": self.raw}

    @property
    def text(self) -> str:
        """Cause and next step, for a flash message or a form error."""
        return join(self.lead, self.hint)

    def english(self) -> str:
        """All of it in English, raw text included: for logs, mail and scripts."""
        with override("en"):
            return "\n".join(part for part in (self.text, self.raw) if part)

    def __str__(self):
        return self.english()

    def as_json(self) -> dict:
        return {"message": self.message, "params": self.params}

    def html(self, intro=""):
        """`intro` and the text, and the raw words in a fold-out (kept, never as the message)."""
        if not self.raw:
            return format_html("{}", join(intro, self.text))
        return format_html('{}<details class="failure__raw"><summary>{}</summary>'
                           '<pre class="output">{}</pre></details>',
                           join(intro, self.text), gettext("Details"), self.raw)


class Stored(Failure):
    """A failure stored before message ids: its text, as it was written."""

    @property
    def lead(self):
        return self.message

    @property
    def hint(self):
        return ""


def stored(failure, text) -> Failure | None:
    """What a row holds: its `failure` JSON, else its `text` (rows from before); None if neither."""
    if failure:
        return Failure(failure["message"], failure.get("params") or {})
    return Stored(text) if text else None


def join(*sentences):
    """Sentences as one text: a space after an English one, none after a Chinese one."""
    text = ""
    for sentence in filter(None, sentences):
        text += ("" if not text or text[-1] in "。：；！？）" else " ") + sentence
    return text


def _fill(text, params):
    try:
        return text % params
    except (KeyError, TypeError, ValueError):  # a translation that lost a placeholder
        return text


def host_of(url) -> str:
    return urlsplit(url).hostname or url


def from_acme(exc: AcmeError, directory_url, name="", method="", record="") -> Failure:
    """An AcmeError: the CA not reached, or its problem document with a hint by type."""
    params = {"raw": str(exc), "host": host_of(directory_url), "name": name, "method": method,
              "record": record, "code": exc.cause or exc.problem_type or ""}
    if exc.cause in UNREACHED:
        return Failure(UNREACHED[exc.cause], {**params, "status": exc.http_status or ""})
    return Failure(gettext_noop("The CA refused the request."),
                   {**params, "problem": exc.problem_type or ""})


def retrying(exc: AcmeError, directory_url) -> Failure:
    """A problem an order retries: the CA not reached, or what the CA's problem type means (a
    rate limit, an internal error) rather than "refused"."""
    failure = from_acme(exc, directory_url)
    meaning = HINTS.get((exc.problem_type or "", ""))
    if exc.cause in UNREACHED or not meaning:
        return failure
    return Failure(meaning, {**failure.params, "problem": ""})


def not_validated(name, problem, raw, method, record="") -> Failure:
    """The CA tried a name's challenge and it failed."""
    return Failure(gettext_noop("%(name)s: the CA could not validate this name."),
                   {"name": name, "problem": problem, "raw": raw, "method": method,
                    "record": record})
