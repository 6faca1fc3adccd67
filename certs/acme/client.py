"""ACME client for the order state machine.

`AcmeClient` wraps `acme.client.ClientV2` with what a resumable, one-step-at-a-time
order needs: every call takes and returns plain values, polling never sleeps
(callers get the CA's Retry-After and decide), `badNonce` is retried with a fresh
nonce several times, and every failure is an `AcmeError` that says whether it is
worth retrying and quotes the CA's own words.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

import josepy as jose
import requests
from acme import challenges, client, errors, messages
from cryptography.hazmat.primitives import serialization
from urllib3.exceptions import NameResolutionError

from certs.acme.ari import NewOrder, RenewalWindow, ari_cert_id, parse_renewal_info

log = logging.getLogger(__name__)

# A retry costs one HEAD and the POST again. Ten keeps a request that only a person can
# repeat (registering an account) failing once in a thousand even when the CA rejects half
# the nonces (Pebble's PEBBLE_WFE_NONCEREJECT=50); an order's steps also retry as a whole.
BAD_NONCE_ATTEMPTS = 10
# Problem types after which the same request may succeed later.
_EC_ALGORITHMS = {"secp256r1": jose.ES256, "secp384r1": jose.ES384, "secp521r1": jose.ES512}
_TRANSIENT_PROBLEMS = {"badNonce", "rateLimited", "serverInternal", "connection"}


class AcmeError(Exception):
    """A failure talking to the CA.

    `problem_type` is the ACME problem code (e.g. "unauthorized") when the CA sent
    one; `transient` says whether retrying later can help; `retry_after` is the
    CA's Retry-After in seconds when it gave one. `cause` says why no answer came when
    the CA was not reached ("resolve", "connect", "timeout", "tls") or answered HTTP
    `http_status` without a problem document ("http"); None when the CA answered.
    """

    def __init__(self, message, problem_type=None, transient=False, retry_after=None, cause=None,
                 http_status=None):
        super().__init__(message)
        self.problem_type = problem_type
        self.transient = transient
        self.retry_after = retry_after
        self.cause = cause
        self.http_status = http_status


@dataclass
class ChallengeState:
    type: str
    url: str
    token: str
    status: str
    error: str = ""
    error_type: str = ""


@dataclass
class AuthorizationState:
    url: str
    identifier: str
    wildcard: bool
    status: str
    expires: datetime.datetime | None
    challenges: list[ChallengeState] = field(default_factory=list)
    error: str = ""
    error_type: str = ""  # the problem code of the first failed challenge, e.g. "unauthorized"


@dataclass
class OrderState:
    url: str
    status: str
    finalize_url: str
    certificate_url: str
    authorization_urls: list[str]
    error: str = ""
    retry_after: float | None = None
    error_type: str = ""  # the problem code of `error`
    replaces: str = ""  # the ARI id this order replaces, when the CA accepted one (RFC 9773)


def describe_problem(problem) -> str:
    """The CA's problem document as one readable line, subproblems included."""
    if problem is None:
        return ""
    text = f"{problem.code or problem.typ}: {problem.detail or problem.title or ''}".strip()
    for sub in problem.subproblems or ():
        ident = sub.identifier.value if sub.identifier else ""
        text += f"; {ident} {sub.code or sub.typ}: {sub.detail or ''}"
    return text


class _Network(client.ClientNetwork):
    """ClientNetwork that retries badNonce more than once, each time with a fresh nonce,
    and keeps the CA's Retry-After on the problems it raises."""

    def _check_response(self, response, content_type=None):
        try:
            if response.status_code == 409 and "Location" not in response.headers:
                # acme turns every 409 into ConflictError (an existing account); a 409 problem
                # without a Location is the CA's word, e.g. RFC 9773's alreadyReplaced.
                _raise_problem(response)
            return super()._check_response(response, content_type=content_type)
        except messages.Error as error:
            error.retry_after = _retry_after_seconds(response)  # acme.messages.Error allows this
            error.http_status = response.status_code
            raise

    def post(self, *args, **kwargs):
        for attempt in range(BAD_NONCE_ATTEMPTS):
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == BAD_NONCE_ATTEMPTS - 1:
                    raise
                log.info("CA rejected a nonce; retrying with a fresh one (%d)", attempt + 1)


def _raise_problem(response):
    try:
        problem = messages.Error.from_json(response.json())
    except (ValueError, jose.DeserializationError):
        return
    raise problem


def _retry_after_seconds(response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    when = client.ClientV2.retry_after(response, 0)
    return max(0.0, (when - datetime.datetime.now()).total_seconds())


def problem_code(problem) -> str:
    """The short code of a problem document ("unauthorized"), or its full type outside ACME's."""
    return "" if problem is None else str(problem.code or problem.typ or "")


def _unreached(exc: requests.exceptions.RequestException) -> str:
    """Why a request got no answer: "tls", "timeout", "resolve" or "connect"."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timeout"
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NameResolutionError) or "Name or service not known" in str(exc):
        return "resolve"
    return "connect"


def _translate(exc: Exception) -> AcmeError:
    if isinstance(exc, AcmeError):
        return exc
    if isinstance(exc, messages.Error):
        status = getattr(exc, "http_status", 0)
        return AcmeError(
            describe_problem(exc), problem_type=exc.code,
            transient=exc.code in _TRANSIENT_PROBLEMS or status == 429 or status >= 500,
            retry_after=getattr(exc, "retry_after", None),
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return AcmeError(
            f"TLS error talking to the CA ({exc}); for a private or test CA set CERTPANEL_CA_BUNDLE",
            problem_type="connection",
            transient=True, cause="tls",
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return AcmeError(f"cannot reach the CA: {exc}", problem_type="connection", transient=True,
                         cause=_unreached(exc))
    if isinstance(exc, errors.ClientError):
        response = exc.args[0] if exc.args else None
        if isinstance(response, requests.Response):
            busy = response.status_code == 429 or response.status_code >= 500
            return AcmeError(
                f"the CA answered HTTP {response.status_code} without a problem document",
                problem_type="serverInternal" if busy else None,
                transient=busy,
                retry_after=_retry_after_seconds(response),
                cause="http", http_status=response.status_code,
            )
        return AcmeError(f"unexpected answer from the CA: {exc}")
    if isinstance(exc, errors.Error):
        return AcmeError(f"ACME error: {exc}")
    raise exc


class AcmeClient:
    """One account at one CA. Cheap to keep: it holds the directory and nonces."""

    def __init__(self, directory_url: str, account_key_pem: str, account_url: str | None = None,
                 verify: bool | str = True, timeout: int = 30, user_agent: str = "CertPanel"):
        key = serialization.load_pem_private_key(account_key_pem.encode(), password=None)
        self._jwk = jose.JWKEC(key=key) if hasattr(key, "curve") else jose.JWKRSA(key=key)
        # The curve decides the algorithm (RFC 7518 3.4): an imported account may hold a P-384 key.
        alg = _EC_ALGORITHMS[key.curve.name] if hasattr(key, "curve") else jose.RS256
        self._net = _Network(self._jwk, alg=alg, verify_ssl=verify, user_agent=user_agent, timeout=timeout)
        if account_url:
            self._net.account = messages.RegistrationResource(uri=account_url, body=messages.Registration())
        self.directory_url = directory_url
        self._client = None

    def _acme(self) -> client.ClientV2:
        if self._client is None:
            try:
                directory = client.ClientV2.get_directory(self.directory_url, self._net)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an AcmeError
                raise _translate(exc) from exc
            self._client = client.ClientV2(directory, self._net)
        return self._client

    def _post_as_get(self, url):
        acme = self._acme()
        return self._net.post(url, None, new_nonce_url=acme.directory["newNonce"])

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc) from exc

    # --- account

    def register(self, email: str = "", eab_kid: str = "", eab_hmac_key: str = "") -> str:
        """Create (or find) the account; returns its URL."""

        def run():
            acme = self._acme()
            eab = None
            if eab_kid:
                try:
                    eab = messages.ExternalAccountBinding.from_data(
                        account_public_key=self._jwk.public_key(), kid=eab_kid, hmac_key=eab_hmac_key,
                        directory=acme.directory,
                    )
                except ValueError:  # never echo the key itself
                    raise AcmeError("the EAB HMAC key is not valid base64url: copy it exactly as the CA shows it",
                                    problem_type="malformed") from None
            elif acme.external_account_required():
                raise AcmeError(
                    "this CA requires External Account Binding: give the EAB key id and HMAC key",
                    problem_type="externalAccountRequired",
                )
            registration = messages.NewRegistration.from_data(
                email=email or None, terms_of_service_agreed=True, external_account_binding=eab
            )
            try:
                return acme.new_account(registration).uri
            except errors.ConflictError as conflict:  # the key already has an account
                self._net.account = messages.RegistrationResource(uri=conflict.location, body=messages.Registration())
                return conflict.location

        return self._call(run)

    # --- orders

    def new_order(self, csr_pem: bytes, replaces: str | None = None) -> OrderState:
        """Create an order for the CSR's names. `replaces` (an ARI certificate id, see
        certs.acme.ari.ari_cert_id) is sent only when the CA offers ARI."""

        def post(**extra):
            identifiers = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in _csr_names(csr_pem)]
            return self._net.post(self._acme().directory["newOrder"], NewOrder(identifiers=identifiers, **extra),
                                  new_nonce_url=self._acme().directory["newNonce"])

        def run():
            sent = replaces if replaces and self.supports_ari() else ""
            try:
                response = post(replaces=sent) if sent else post()
            except messages.Error as error:
                # `replaces` is a hint: a CA that refuses it (already replaced, a certificate it
                # no longer knows) still gets the order, as RFC 9773 suggests.
                if not sent or str(error.typ).rsplit(":", 1)[-1] not in ("alreadyReplaced", "malformed"):
                    raise
                log.warning("the CA refused replaces=%s (%s); ordering without it", sent, describe_problem(error))
                sent, response = "", post()
            state = _order_state(response, response.headers.get("Location"))
            state.replaces = state.replaces or sent
            return state

        return self._call(run)

    # --- ARI (RFC 9773)

    def supports_ari(self) -> bool:
        """Whether the CA's directory offers renewalInfo."""
        return bool(self._renewal_info_url())

    def _renewal_info_url(self) -> str:
        try:
            return self._acme().directory["renewalInfo"] or ""
        except KeyError:
            return ""

    def renewal_info(self, cert_pem: str | bytes) -> RenewalWindow | None:
        """The CA's suggested renewal window for the leaf in `cert_pem`, as
        (window_start, window_end, retry_after_seconds); None when the CA has no ARI.
        An unusable answer (no window, end before start) is an AcmeError, transient."""

        def run():
            base = self._renewal_info_url()
            if not base:
                return None
            try:
                cert_id = ari_cert_id(cert_pem)
            except ValueError as exc:
                raise AcmeError(str(exc)) from None
            response = self._net.get(base.rstrip("/") + "/" + cert_id, content_type="application/json")
            try:
                start, end = parse_renewal_info(response.json())
            except ValueError as exc:  # requests' JSONDecodeError is a ValueError too
                raise AcmeError(f"the CA's renewalInfo is unusable: {exc}", problem_type="serverInternal",
                                transient=True, retry_after=_retry_after_seconds(response)) from None
            return RenewalWindow(start, end, _retry_after_seconds(response))

        return self._call(run)

    def fetch_order(self, url: str) -> OrderState:
        return self._call(lambda: _order_state(self._post_as_get(url), url))

    def fetch_authorization(self, url: str) -> tuple[AuthorizationState, float | None]:
        def run():
            response = self._post_as_get(url)
            body = messages.Authorization.from_json(response.json())
            state = AuthorizationState(
                url=url,
                identifier=body.identifier.value,
                wildcard=bool(body.wildcard),
                status=body.status.name,
                expires=body.expires,
                challenges=[
                    ChallengeState(
                        type=c.chall.typ, url=c.uri, token=_token(c), status=c.status.name,
                        error=describe_problem(c.error), error_type=problem_code(c.error),
                    )
                    for c in body.challenges
                ],
            )
            failed = [c for c in state.challenges if c.error]
            state.error = "; ".join(c.error for c in failed)
            state.error_type = failed[0].error_type if failed else ""
            return state, _retry_after_seconds(response)

        return self._call(run)

    def key_authorization(self, token: str) -> str:
        """What the CA expects to read for `token` (the HTTP-01 file body)."""
        return challenges.HTTP01(token=jose.b64decode(token)).key_authorization(self._jwk)

    def dns01_value(self, token: str) -> str:
        """The TXT value the CA expects at _acme-challenge.<name> for `token`."""
        return challenges.DNS01(token=jose.b64decode(token)).validation(self._jwk)

    def answer_challenge(self, url: str, challenge_type: str) -> None:
        responses = {"http-01": challenges.HTTP01Response, "dns-01": challenges.DNS01Response}
        if challenge_type not in responses:
            raise AcmeError(f"cannot answer a {challenge_type} challenge")
        self._call(lambda: self._net.post(url, responses[challenge_type](),
                                          new_nonce_url=self._acme().directory["newNonce"]))

    def finalize(self, finalize_url: str, csr_pem: bytes, order_url: str) -> OrderState:
        from cryptography import x509

        def run():
            csr = x509.load_pem_x509_csr(csr_pem)
            response = self._net.post(finalize_url, messages.CertificateRequest(csr=csr),
                                      new_nonce_url=self._acme().directory["newNonce"])
            return _order_state(response, order_url)

        return self._call(run)

    def download_certificate(self, url: str) -> str:
        """The full chain (leaf first) in PEM."""
        return self._call(lambda: self._post_as_get(url).text)

    # --- revocation

    def revoke(self, cert_pem: str, reason_code: int = 0) -> None:
        """Revoke the leaf in `cert_pem` (signed with this account's key, which must be the
        one that ordered it or hold authorizations for all its names).

        `reason_code` is an RFC 5280 CRLReason; ACME CAs accept 0 unspecified,
        1 keyCompromise, 3 affiliationChanged, 4 superseded, 5 cessationOfOperation.
        A certificate the CA already revoked raises AcmeError with problem_type
        "alreadyRevoked".
        """
        from cryptography import x509

        def run():
            text = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
            self._acme().revoke(x509.load_pem_x509_certificate(text), reason_code)

        self._call(run)


def _token(challenge_body) -> str:
    token = getattr(challenge_body.chall, "token", None)
    return jose.b64encode(token).decode() if token else ""


def _csr_names(csr_pem: bytes) -> list[str]:
    from acme import crypto_util
    from cryptography import x509

    csr = x509.load_pem_x509_csr(csr_pem)
    names, _ips = crypto_util.get_identifiers_from_x509(csr.subject, csr.extensions)
    return names


def _order_state(response, url) -> OrderState:
    body = messages.Order.from_json(response.json())
    return OrderState(
        url=url,
        status=body.status.name,
        finalize_url=body.finalize or "",
        certificate_url=body.certificate or "",
        authorization_urls=list(body.authorizations or ()),
        error=describe_problem(body.error),
        error_type=problem_code(body.error),
        retry_after=_retry_after_seconds(response),
        replaces=str(response.json().get("replaces") or ""),
    )
