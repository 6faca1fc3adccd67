"""The order state machine: one idempotent step per task run.

    new -> authorizing -> [propagating | awaiting_user] -> validating -> finalizing -> valid
    any step -> invalid (the CA's problem, in its words); DNS-01 waits in the brackets

Every ACME URL is stored as soon as the CA hands it out, so a step that runs twice
(a re-delivered task after a worker died) resumes the same order. A step returns
how long to wait before the next one: 0 to continue at once, None when the order
is finished. Waiting is never a sleep in a worker: a step polls the CA inline
for at most ACME_INLINE_POLL_SECONDS, then the task reschedules itself.

Only the holder of the order's current `wakeup` token, with a live claim, runs a
step (see `claim`); any other delivery of the task is a harmless no-op.
"""

import datetime
import json
import logging
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from certs import accounts, ownership, problems
from certs.acme import AcmeError, generate_private_key, make_csr
from certs.challenges import dns01, external, http01, standalone
from certs.dns import propagation
from certs.dns.base import DnsProviderError
from certs.models import Authorization, Certificate, CertificateVersion, Challenge, ChallengeType, Order
from certs.problems import Failure
from certs.renewal import policy as renewal_policy
from panel.deployment import dispatch
from panel.security import audit
from panel.toolkit import task_queue
from panel.toolkit.access import is_admin
from panel.toolkit.pem import same_public_key
from panel.toolkit.task_queue import NamedTask

log = logging.getLogger(__name__)

INLINE_INTERVALS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


class OrderFailed(Exception):
    """A permanent failure: the order becomes invalid with this `failure` (certs.problems)."""

    def __init__(self, message, **params):
        self.failure = Failure(message, params)
        super().__init__(self.failure.english())


class NotOrderable(Exception):
    """The certificate was uploaded: there is no ACME account to order it with."""


class NamesNotOwned(Exception):
    """Names of the certificate are no longer on its owner's sites (certs.ownership)."""


class OrderEnded(Exception):
    """The order was ended while a step ran (end_orders): the step's result is dropped."""


class NamesLost(OrderFailed):
    """A renewal's names are no longer on the owner's sites: it fails, and renewing stops."""


# --- starting and claiming


def start_order(certificate: Certificate, is_renewal=False, asked_by_user=None) -> Order:
    """A new order for `certificate`, queued. Raises IntegrityError if one is already active,
    NotOrderable for an uploaded certificate, NamesNotOwned when someone asks for an order with
    names no longer on the owner's sites. A renewal the sweep starts (asked_by_user defaults to
    `not is_renewal`) is checked by its first step (run_step); "Renew now" is a renewal someone
    asks for, checked now."""
    if certificate.is_uploaded:
        raise NotOrderable(_("This certificate was uploaded: the panel cannot renew it. Upload its successor, "
                             "or issue a certificate through ACME."))
    if asked_by_user is None:
        asked_by_user = not is_renewal
    if asked_by_user:  # someone waits on this request; sweeps run on a worker, beside the queue
        refusal = _names_no_longer_owned(certificate)
        if refusal:
            raise NamesNotOwned(refusal.text)
        task_queue.require_reachable()
    with transaction.atomic():
        order = Order.objects.create(owner_id=certificate.owner_id, certificate=certificate, is_renewal=is_renewal)
        requested = (gettext_noop("Renewal requested for %(names)s (%(key_type)s)") if is_renewal
                     else gettext_noop("Order requested for %(names)s (%(key_type)s)"))
        order.log(requested, names=", ".join(certificate.domains), key_type=str(certificate.get_key_type_display()))
        changes = {"status": Certificate.Status.PENDING if certificate.current_version_id is None
                   else certificate.status}
        if asked_by_user:  # renewing by hand again after its owner stopped renewing it
            changes["renewal_stopped"] = certificate.renewal_stopped = False
        Certificate.objects.filter(pk=certificate.pk).update(**changes)
        transaction.on_commit(lambda: enqueue(order.pk, order.wakeup, 0))
    return order


def end_orders(certificates, failure: Failure):
    """End the orders in flight of `certificates` with `failure`, inside the caller's
    transaction: a queued step finds its wakeup stale, a running one cannot store a version
    (_store_version) and its result is dropped. What their challenges published is removed
    once the transaction commits (a failure to remove is logged on the order)."""
    ended = list(Order.objects.filter(certificate__in=certificates)
                 .exclude(status__in=Order.FINISHED).select_related("certificate"))
    for order in ended:
        Order.objects.filter(pk=order.pk).update(
            status=Order.Status.INVALID, finished_at=timezone.now(), error=failure.english(),
            failure=failure.as_json(), wakeup=uuid.uuid4(), claimed_until=None)
        order.log(gettext_noop("Failed: %(error)s"), level="error", error=failure.as_json())
        transaction.on_commit(lambda order=order: _cleanup_challenges(order), robust=True)
    return ended


def _names_no_longer_owned(certificate) -> Failure | None:
    """The failure saying which names are no longer on the owner's sites, or None."""
    lost = ownership.names_not_on_sites(certificate.owner, certificate.domains, certificate.challenge)
    if not lost:
        return None
    message = gettext_noop("No longer on the owner's sites: %(names)s. Add them to one of the "
                           "owner's sites again and renew, or request a certificate without them.")
    return Failure(message, {"names": ", ".join(lost)})


ADVANCE_ORDER = NamedTask("certs.tasks.advance_order")


def enqueue(order_id, wakeup, delay):
    ADVANCE_ORDER.apply_async((order_id, str(wakeup)), countdown=delay or None)


class Claim:
    STALE = "stale"  # another delivery owns the order's future, or it is finished
    BUSY = "busy"  # someone is running a step right now


def claim(order_id, wakeup):
    """Take the order for one step. Returns the Order, Claim.BUSY or Claim.STALE."""
    now = timezone.now()
    taken = (
        Order.objects.filter(pk=order_id, wakeup=wakeup)
        .exclude(status__in=Order.FINISHED)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + datetime.timedelta(seconds=settings.ORDER_CLAIM_SECONDS))
    )
    if taken:
        return Order.objects.select_related("certificate", "certificate__account").get(pk=order_id)
    current = Order.objects.filter(pk=order_id).values("wakeup", "status").first()
    if current is None or str(current["wakeup"]) != str(wakeup) or current["status"] in Order.FINISHED:
        return Claim.STALE
    return Claim.BUSY


def run_step(order: Order):
    """Run the step for the order's status, record the outcome, release the claim and
    queue the next step. Returns the delay before the next step, or None if finished."""
    wakeup = order.wakeup
    failure = retry_after = None
    names_lost = False
    try:
        # The sweep starts renewals without looking at sites (it stays one query however many are
        # due); the first step refuses names the owner no longer has before the CA is asked.
        if order.is_renewal and order.status == Order.Status.NEW and not order.acme_url:
            refusal = _names_no_longer_owned(order.certificate)
            if refusal:
                raise NamesLost(refusal.message, **refusal.params)
        step = STEPS[order.status]
        delay = step(order, accounts.client_for(order.certificate.account))
        order.step_attempts = 0
    except OrderEnded:
        log.info("order %s: ended during step %s; result discarded", order.pk, order.status)
        return None
    except AcmeError as exc:
        # After transient failures too (the CA was down, and came back having forgotten us);
        # counted as an attempt, so a CA that keeps forgetting cannot loop the order forever.
        if (exc.problem_type == "accountDoesNotExist" and order.step_attempts <= settings.ORDER_MAX_RETRIES
                and _recovered_account(order)):
            # The orders of the account the CA forgot are gone with it: order anew if one was made.
            if order.acme_url:
                _restart_at_ca(order)
            order.step_attempts, delay = order.step_attempts + 1, 0  # the step again, account registered anew
        else:
            delay = _transient_delay(order, exc) if exc.transient else None
            directory = order.certificate.account.directory_url
            failure = None if delay is not None else problems.from_acme(exc, directory)
            retry_after = exc.retry_after
    except OrderFailed as exc:
        delay, failure, names_lost = None, exc.failure, isinstance(exc, NamesLost)
    except Exception as exc:  # noqa: BLE001 - e.g. a locked database; retried, then reported
        log.exception("order %s: step %s crashed", order.pk, order.status)
        internal = f"internal error: {type(exc).__name__}: {exc}"
        delay = _transient_delay(order, AcmeError(internal, transient=True))
        crashed = gettext_noop("The panel hit an internal error; its log on the server says more.")
        failure = None if delay is not None else Failure(crashed, {"raw": internal})
    if failure:
        order.status, order.finished_at = Order.Status.INVALID, timezone.now()
        order.error, order.failure = failure.english(), failure.as_json()
    claimed_until, order.claimed_until = order.claimed_until, None
    if delay is not None and not order.finished:
        order.wakeup = uuid.uuid4()
        order.next_step_at = timezone.now() + datetime.timedelta(seconds=delay)
    if failure:
        _cleanup_challenges(order)  # before the order reads as finished: nothing is left behind then
    with transaction.atomic():  # the order and its certificate show the failure together
        if not _save_if_still_claimed(order, wakeup, claimed_until):
            # Our claim lapsed and another delivery took the order over: its result stands.
            log.warning("order %s: claim lost during step %s; result discarded", order.pk, order.status)
            return None
        if failure:
            _record_failure(order, failure, retry_after, stop_renewing=names_lost)
    if delay is not None and not order.finished:
        transaction.on_commit(lambda: enqueue(order.pk, order.wakeup, delay))
    return delay


def _recovered_account(order):
    """The CA lost the ACME account: register it again. False if that fails too."""
    try:
        accounts.reregister(order.certificate.account)
    except AcmeError as exc:
        log.warning("order %s: could not register the account again: %s", order.pk, exc)
        return False
    order.log(gettext_noop("The CA no longer knew the ACME account; registered it again"), level="warning")
    return True


def _restart_at_ca(order):
    """Forget the ACME order the CA no longer has, and go back to ordering: same key and CSR,
    so a version still comes from this one Order row."""
    _cleanup_challenges(order)
    order.authorizations.all().delete()
    order.acme_url = order.finalize_url = order.certificate_url = order.replaces = ""
    order.status = Order.Status.NEW
    order.log(gettext_noop("The CA no longer knows this order; starting a new order at the CA"), level="warning")


def _save_if_still_claimed(order, wakeup, claimed_until):
    order.updated_at = timezone.now()
    values = {f.attname: getattr(order, f.attname) for f in Order._meta.concrete_fields if not f.primary_key}
    return Order.objects.filter(pk=order.pk, wakeup=wakeup, claimed_until=claimed_until).update(**values) == 1


def _transient_delay(order, exc):
    order.step_attempts += 1
    if order.step_attempts > settings.ORDER_MAX_RETRIES:
        return None
    delay = min(2 ** order.step_attempts, 300)
    if exc.retry_after:
        delay = max(delay, exc.retry_after)
    # In the reader's words (the raw text in a fold-out); a step that crashed, as it crashed.
    directory = order.certificate.account.directory_url
    known = exc.cause or exc.problem_type
    error = problems.retrying(exc, directory).as_json() if known else str(exc)
    order.log(gettext_noop("Temporary problem, retrying in %(seconds)d s: %(error)s"), level="warning",
              seconds=round(delay), error=error)
    return delay


def _record_failure(order, failure, retry_after=None, stop_renewing=False):
    order.log(gettext_noop("Failed: %(error)s"), level="error", error=failure.as_json())
    message = failure.english()
    cert = order.certificate
    cert.last_error, cert.last_failure = message, failure.as_json()
    if cert.current_version_id is None:
        cert.status = Certificate.Status.FAILED
    fields = ["last_error", "last_failure", "status", "renewal_failures", "next_renewal_at"]
    if stop_renewing:
        renewal_policy.stopped(cert, message)
        order.log(gettext_noop("No further renewal attempts until the certificate is renewed by hand"))
        fields.append("ari_check_after")
    elif order.is_renewal:
        renewal_policy.failed(cert, message, retry_after)
        order.log(gettext_noop("Next renewal attempt: %(at)s UTC"), at=f"{cert.next_renewal_at:%Y-%m-%d %H:%M}")
    cert.save(update_fields=fields)


def _cleanup_challenges(order):
    """Remove what we presented. A failure here is reported, never fatal to the order."""
    pending = Challenge.objects.filter(authorization__order=order, cleaned_up=False)
    if ChallengeType(order.certificate.challenge).is_external:
        _cleanup_external(order, pending)
        return
    for challenge in pending:
        try:
            if challenge.type == "http-01":
                http01.cleanup(challenge.token, (challenge.provider_state or {}).get("directory", ""))
            elif challenge.presented_at is not None:
                dns01.cleanup(order.certificate, challenge)
        except (OSError, DnsProviderError) as exc:
            if challenge.record_name:
                order.log(gettext_noop("Could not remove %(name)s: %(error)s"), level="warning",
                          name=challenge.record_name, error=str(exc))
            else:
                order.log(gettext_noop("Could not remove a challenge file: %(error)s"), level="warning", error=str(exc))
            continue
        challenge.cleaned_up = True
        challenge.save(update_fields=["cleaned_up"])


def _cleanup_external(order, challenges):
    """One clean-up per presentation: the challenges presented together share its state.
    Standalone presents nothing that outlives its step."""
    batches = {}
    for challenge in challenges:
        key = json.dumps(challenge.provider_state, sort_keys=True) if challenge.presented_at else None
        batches.setdefault(key, []).append(challenge.pk)
    for key, pks in batches.items():
        if key is not None:
            try:
                external.cleanup(order.certificate, json.loads(key))
            except (OSError, external.PresentationError) as exc:
                order.log(gettext_noop("Could not undo the challenge's changes on the server: %(error)s"),
                          level="warning", error=str(exc))
                continue
        Challenge.objects.filter(pk__in=pks).update(cleaned_up=True)


def _inline_deadline():
    return time.monotonic() + settings.ACME_INLINE_POLL_SECONDS


def _poll_inline(order, fetch, done, deadline):
    """Call fetch() until done(result) or the step's inline budget is spent; returns the last result."""
    result = fetch()
    for interval in _intervals():
        if done(result) or time.monotonic() + interval > deadline or not _keep_claim(order):
            break
        time.sleep(interval)
        result = fetch()
    return result


def _keep_claim(order):
    """Renew our claim while a step waits on the CA. False once another delivery took over."""
    renewed = timezone.now() + datetime.timedelta(seconds=settings.ORDER_CLAIM_SECONDS)
    if Order.objects.filter(pk=order.pk, wakeup=order.wakeup, claimed_until=order.claimed_until).update(
        claimed_until=renewed
    ):
        order.claimed_until = renewed
        return True
    return False


def _intervals():
    yield from INLINE_INTERVALS
    while True:
        yield INLINE_INTERVALS[-1]


def _reschedule_delay(order, retry_after):
    """How long to release the worker for while the CA works."""
    # Polling is not a failure: back off gently with the order's age.
    waited = (timezone.now() - order.created_at).total_seconds()
    delay = min(max(1.0, waited / 2), 30.0)
    return max(delay, retry_after or 0)


# --- steps


def step_new(order, acme):
    cert = order.certificate
    if cert.challenge_alias and not order.acme_url:
        not_set_up = dns01.alias_problems(cert.domains, cert.challenge_alias)
        if not_set_up:
            raise OrderFailed(gettext_noop("The challenge alias is not set up: %(problems)s"),
                              problems="; ".join(not_set_up))
    if not order.private_key:
        order.private_key = generate_private_key(cert.key_type)
        order.csr_pem = make_csr(order.private_key, cert.domains).decode()
        order.save(update_fields=["private_key", "csr_pem"])
    if not order.acme_url:
        replaces = renewal_policy.replaces_id(cert)  # ARI: the version this order replaces, if any
        state = acme.new_order(order.csr_pem.encode(), **({"replaces": replaces} if replaces else {}))
        order.acme_url, order.finalize_url, order.replaces = state.url, state.finalize_url, state.replaces
        with transaction.atomic():  # a worker killed in between left the URL without its log line
            order.save(update_fields=["acme_url", "finalize_url", "replaces"])
            order.log(gettext_noop("Order created at the CA: %(url)s"), url=state.url)
    else:
        state = acme.fetch_order(order.acme_url)
    if state.status == "invalid":
        raise OrderFailed(gettext_noop("The CA marked the order invalid."),
                          problem=state.error_type, raw=state.error)
    known = set(order.authorizations.values_list("url", flat=True))
    for url in state.authorization_urls:
        if url in known:
            continue
        authz, _ = acme.fetch_authorization(url)
        _store_authorization(order, authz)
    order.status = Order.Status.AUTHORIZING
    return 0


@transaction.atomic  # an authorization row without its challenge would never be answered
def _store_authorization(order, authz):
    row = Authorization.objects.create(
        order=order, url=authz.url, identifier=authz.identifier, wildcard=authz.wildcard,
        status=authz.status, expires_at=authz.expires,
    )
    if authz.status == "valid":
        order.log(gettext_noop("%(name)s: already authorized at this CA"),
                  name=_authorized_name(authz))
        return
    wanted = ChallengeType(order.certificate.challenge).acme_type
    challenge = next((c for c in authz.challenges if c.type == wanted), None)
    if challenge is None:
        offered = ", ".join(c.type for c in authz.challenges) or "none"
        message = gettext_noop("%(name)s: the CA does not offer %(wanted)s (it offers: "
                               "%(offered)s); choose another validation method.")
        raise OrderFailed(message, name=_authorized_name(authz), wanted=wanted, offered=offered)
    Challenge.objects.create(authorization=row, type=challenge.type, url=challenge.url, token=challenge.token,
                             status=challenge.status)


def _authorized_name(authorization):
    """The name an authorization (a row, or the CA's) is for, as the certificate lists it: ACME
    gives a wildcard's identifier without its "*." and flags it instead (RFC 8555 7.1.4)."""
    return ("*." if authorization.wildcard else "") + authorization.identifier


def _identifier(challenge):
    return _authorized_name(challenge.authorization)


def step_authorize(order, acme):
    cert = order.certificate
    method = ChallengeType(cert.challenge)
    if method == ChallengeType.HTTP01_STANDALONE:
        return _validate_standalone(order, acme)
    unanswered = Challenge.objects.filter(authorization__order=order, answered_at__isnull=True)
    if method in external.MODES:
        _present_external(order, acme, unanswered.select_related("authorization"))
    for challenge in unanswered.select_related("authorization"):
        identifier = _identifier(challenge)
        if challenge.type == "http-01":
            if method == ChallengeType.HTTP01:
                try:
                    where = http01.present(challenge.token, acme.key_authorization(challenge.token), order.owner,
                                           challenge.authorization.identifier)
                except http01.NotYours as exc:
                    raise OrderFailed(exc.message, **exc.params) from None
                # Where it was written, so clean-up removes exactly it even if the site changes meanwhile.
                challenge.provider_state = {"directory": where}
                challenge.save(update_fields=["provider_state"])
            acme.answer_challenge(challenge.url, challenge.type)
            challenge.answered_at = timezone.now()
            challenge.save(update_fields=["answered_at"])
            order.log(gettext_noop("%(name)s: answered http-01"), name=identifier)
            continue
        if not challenge.record_value:
            challenge.record_name = dns01.record_name(identifier, cert.challenge_alias)
            challenge.record_value = acme.dns01_value(challenge.token)
            challenge.save(update_fields=["record_name", "record_value"])
        if method == ChallengeType.DNS01 and challenge.presented_at is None:
            try:
                challenge.provider_state = dns01.present(cert, challenge)
            except DnsProviderError as exc:
                message = gettext_noop("%(name)s: the DNS provider could not publish the TXT "
                                       "record: check the DNS credentials (key, permissions, "
                                       "zone).")
                raise OrderFailed(message, name=identifier, raw=str(exc))
            challenge.presented_at = timezone.now()
            challenge.save(update_fields=["provider_state", "presented_at"])
            order.log(gettext_noop("%(name)s: published TXT %(record)s"), name=identifier, record=challenge.record_name)
    waiting = list(unanswered.filter(type="dns-01"))
    if not waiting:
        order.status = Order.Status.VALIDATING
    elif method == ChallengeType.DNS01_MANUAL:
        order.status = Order.Status.AWAITING_USER
        expiries = [e for e in order.authorizations.values_list("expires_at", flat=True) if e]
        order.propagation_deadline = min(expiries) if expiries else timezone.now() + datetime.timedelta(hours=1)
        lines = "; ".join(f"{c.record_name} TXT {c.record_value}" for c in waiting)
        order.log(gettext_noop("Add these TXT records (the order continues once they are visible): %(records)s"),
                  records=lines)
    else:
        order.status = Order.Status.PROPAGATING
        timeout = dns01.propagation_timeout(cert)
        order.propagation_deadline = timezone.now() + datetime.timedelta(seconds=timeout)
        order.log(gettext_noop("Waiting up to %(seconds)d s for the TXT records on every authoritative server"),
                  seconds=timeout)
    return 0


def _present_external(order, acme, unanswered):
    """Present every not yet presented challenge in one go (one config change, one reload),
    and store what was done on the challenges before any is answered."""
    todo = [challenge for challenge in unanswered if challenge.presented_at is None]
    if not todo:
        return
    presentations = [external.Presentation(_identifier(c), c.token, acme.key_authorization(c.token)) for c in todo]
    try:
        with external.present(order.certificate, presentations) as state:
            # Stored inside the block: the mode keeps the server config locked until it is,
            # and undoes the presentation of a worker killed before (external.py).
            Challenge.objects.filter(pk__in=[c.pk for c in todo]).update(provider_state=state,
                                                                         presented_at=timezone.now())
    except external.PresentationError as exc:
        raise OrderFailed(gettext_noop("The challenge could not be put in place on the server."),
                          raw=str(exc))
    order.log(gettext_noop("Challenge presented (%(method)s) for %(names)s"), method=order.certificate.challenge,
              names=", ".join(p.name for p in presentations))


def _validate_standalone(order, acme):
    """http-01-standalone: the listener lives only inside this step, so the step answers the
    challenges and waits for the CA's verdict itself (renewing its claim), then stops
    listening. A step run again (its worker died) listens again for what is still pending."""
    pending = list(Challenge.objects.filter(authorization__order=order).exclude(authorization__status="valid")
                   .select_related("authorization"))
    if not pending:  # every name was already authorized at this CA: no need for the port
        order.status = Order.Status.VALIDATING
        return 0
    responses = {c.token: acme.key_authorization(c.token) for c in pending}
    port = settings.STANDALONE_PORT
    try:
        with standalone.serving(responses, settings.STANDALONE_ADDRESS, port):
            order.log(gettext_noop("Listening on port %(port)d for the CA's validation"), port=port)
            for challenge in pending:
                if challenge.answered_at is None:
                    acme.answer_challenge(challenge.url, challenge.type)
                    challenge.answered_at = timezone.now()
                    challenge.save(update_fields=["answered_at"])
                    order.log(gettext_noop("%(name)s: answered http-01"), name=_identifier(challenge))
            deadline = time.monotonic() + settings.STANDALONE_VALIDATION_SECONDS
            for row in order.authorizations.exclude(status="valid"):
                state, _retry = _poll_inline(order, lambda: acme.fetch_authorization(row.url),
                                             lambda result: result[0].status != "pending", deadline)
                if state.status == "pending":
                    message = gettext_noop(
                        "%(name)s: the CA did not validate within %(seconds)s s while port "
                        "%(port)s was listening: check that the CA can reach port %(port)s of "
                        "this server (firewall, NAT).")
                    raise OrderFailed(message, name=_authorized_name(row), port=port,
                                      seconds=f"{settings.STANDALONE_VALIDATION_SECONDS:g}")
    except standalone.PortUnavailable as exc:
        raise OrderFailed(gettext_noop("Port %(port)s could not be listened on for the CA's "
                                       "validation."), port=port, raw=str(exc))
    order.status = Order.Status.VALIDATING  # reads and records each authorization's verdict
    return 0


def step_propagate(order, acme):
    """PROPAGATING / AWAITING_USER: answer the DNS challenges once every record is visible."""
    waiting = list(Challenge.objects.filter(authorization__order=order, type="dns-01", answered_at__isnull=True))
    if not order.user_continued:
        missing = propagation.missing_records([(c.record_name, c.record_value) for c in waiting],
                                              internal_allowed=is_admin(order.certificate.owner))
        if missing:
            if timezone.now() >= order.propagation_deadline:
                shown = "; ".join(str(m) for m in missing[:4]) + (" …" if len(missing) > 4 else "")
                message = gettext_noop("Gave up waiting for the TXT records in DNS: %(records)s. "
                                       "Check them at the zone's authoritative servers, then "
                                       "request the certificate again.")
                raise OrderFailed(message, records=shown)
            age = (timezone.now() - order.updated_at).total_seconds()
            return min(max(2.0, age), 15.0)
    for challenge in waiting:
        acme.answer_challenge(challenge.url, "dns-01")
        challenge.answered_at = timezone.now()
        challenge.save(update_fields=["answered_at"])
    order.log(gettext_noop("TXT records in place (you said so); answered dns-01") if order.user_continued
              else gettext_noop("TXT records visible; answered dns-01"))
    order.status = Order.Status.VALIDATING
    return 0


def continue_order(order):
    """The user says the manual TXT records are in place: stop watching, answer now. Only a
    DNS-01 order waits for the user, and DNS-01 names need no site (certs.ownership)."""
    task_queue.require_reachable()
    wakeup = uuid.uuid4()
    updated = Order.objects.filter(
        pk=order.pk, status__in=[Order.Status.AWAITING_USER, Order.Status.PROPAGATING]
    ).update(user_continued=True, wakeup=wakeup, next_step_at=timezone.now())
    if updated:
        order.log(gettext_noop("Continue requested"))
        transaction.on_commit(lambda: enqueue(order.pk, wakeup, 0))
    return bool(updated)


def _record_of(authorization):
    challenges = Challenge.objects.filter(authorization=authorization)
    return challenges.values_list("record_name", flat=True).first() or ""


def step_validate(order, acme):
    method = ChallengeType(order.certificate.challenge).acme_type
    pending = list(order.authorizations.exclude(status="valid"))
    retry_after = None
    deadline = _inline_deadline()  # one budget for the whole step, however many names
    for row in pending:
        state, retry_after = _poll_inline(order, lambda: acme.fetch_authorization(row.url),
                                          lambda result: result[0].status != "pending", deadline)
        row.status = state.status
        row.save(update_fields=["status"])
        if state.status == "invalid":
            Challenge.objects.filter(authorization=row).update(status="invalid", error=state.error)
            failed = problems.not_validated(_authorized_name(row), state.error_type, state.error, method,
                                            record=_record_of(row))
            raise OrderFailed(failed.message, **failed.params)
        if state.status == "valid":
            Challenge.objects.filter(authorization=row).update(status="valid")
            order.log(gettext_noop("%(name)s: validated"), name=_authorized_name(row))
        elif state.status != "pending":
            message = gettext_noop("%(name)s: the authorization is %(status)s at the CA; request "
                                   "the certificate again.")
            raise OrderFailed(message, name=_authorized_name(row), status=state.status)
    if order.authorizations.exclude(status="valid").exists():
        return _reschedule_delay(order, retry_after)
    _cleanup_challenges(order)
    order.status = Order.Status.FINALIZING
    return 0


def step_finalize(order, acme):
    state = acme.fetch_order(order.acme_url)
    if state.status == "ready":
        state = acme.finalize(order.finalize_url, order.csr_pem.encode(), order.acme_url)
        order.log(gettext_noop("Finalizing: CSR sent"))
    if state.status == "processing":
        state = _poll_inline(order, lambda: acme.fetch_order(order.acme_url), lambda s: s.status != "processing",
                             _inline_deadline())
    if state.status == "processing":
        return _reschedule_delay(order, state.retry_after)
    if state.status == "invalid":
        raise OrderFailed(gettext_noop("The CA marked the order invalid."),
                          problem=state.error_type, raw=state.error)
    if state.status != "valid":
        message = gettext_noop("The order is %(status)s at the CA when it should be issued; "
                               "request the certificate again.")
        raise OrderFailed(message, status=state.status)
    order.certificate_url = state.certificate_url
    chain_pem = acme.download_certificate(state.certificate_url)
    _store_version(order, chain_pem)
    return None


def _store_version(order, chain_pem):
    cert = order.certificate
    pems = [p for p in chain_pem.split("-----END CERTIFICATE-----") if "BEGIN CERTIFICATE" in p]
    if not pems:
        raise OrderFailed(gettext_noop("The CA returned no certificate."))
    leaf = x509.load_pem_x509_certificate((pems[0].strip() + "\n-----END CERTIFICATE-----\n").encode())
    _check_leaf(leaf, order)
    with transaction.atomic():
        # Takes the order's row: end_orders either ended it before (no version then) or waits.
        ours = Order.objects.filter(pk=order.pk, wakeup=order.wakeup)
        if not ours.exclude(status__in=Order.FINISHED).update(updated_at=timezone.now()):
            raise OrderEnded
        version, created = CertificateVersion.objects.get_or_create(
            order=order,
            defaults=dict(
                certificate=cert, cert_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
                chain_pem=chain_pem.strip() + "\n", private_key=order.private_key,
                serial=format(leaf.serial_number, "x"), issuer=leaf.issuer.rfc4514_string(),
                not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
            ),
        )
        cert.current_version = version
        cert.status = Certificate.Status.VALID
        cert.last_error, cert.last_failure = "", None
        replaced = renewal_policy.issued(cert, version, is_renewal=order.is_renewal)
        cert.save(update_fields=["current_version", "status", "last_error", "last_failure",
                                 "next_renewal_at", "renewal_failures"])
        order.status = Order.Status.VALID
        order.finished_at = timezone.now()
        order.log(gettext_noop("Certificate issued: serial %(serial)s, valid until %(until)s UTC"),
                  serial=version.serial, until=f"{version.not_after:%Y-%m-%d %H:%M}")
        if replaced:
            order.log(gettext_noop("It covers every name of the site's earlier certificate, which is no "
                                   "longer renewed (its current version stays valid until it expires)."))
        if created:
            audit.record(None, audit.Action.ISSUE, version, serial=version.serial, renewal=order.is_renewal)
        dispatch.put_in_service(cert)


def _check_leaf(leaf, order):
    """A CA's answer can be wrong: the certificate must be for our key and our names."""
    ours = serialization.load_pem_private_key(order.private_key.encode(), password=None).public_key()
    if not same_public_key(leaf.public_key(), ours):
        raise OrderFailed(gettext_noop("The CA returned a certificate for a different key."))
    try:
        names = set(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName))
    except x509.ExtensionNotFound:
        names = set()
    if names != set(order.certificate.domains):
        raise OrderFailed(gettext_noop("The CA returned a certificate for %(got)s, not for the "
                                       "requested names."), got=", ".join(sorted(names)))


STEPS = {
    Order.Status.NEW: step_new,
    Order.Status.AUTHORIZING: step_authorize,
    Order.Status.PROPAGATING: step_propagate,
    Order.Status.AWAITING_USER: step_propagate,
    Order.Status.VALIDATING: step_validate,
    Order.Status.FINALIZING: step_finalize,
}


def resume_stalled():
    """Re-queue unfinished orders whose next step is overdue (e.g. its task was lost with
    its broker). A fresh wakeup makes any older delivery stale, so chains never multiply."""
    now = timezone.now()
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    overdue = (
        Order.objects.exclude(status__in=Order.FINISHED)
        .filter(next_step_at__lt=now - datetime.timedelta(seconds=settings.ORDER_STALL_SECONDS))
        .filter(unclaimed)
    )
    count = 0
    for order in overdue:
        wakeup = uuid.uuid4()
        # Still unclaimed: a worker that took the order since the query keeps its step's result.
        if Order.objects.filter(unclaimed, pk=order.pk, wakeup=order.wakeup).update(wakeup=wakeup, next_step_at=now):
            enqueue(order.pk, wakeup, 0)
            count += 1
    return count
