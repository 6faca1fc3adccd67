"""Requesting a certificate: the rules, and the one way to create one (UI and API)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from certs import accounts, orders, ownership
from certs.challenges import external
from certs.challenges import webroot as webroot_mode
from certs.models import Certificate, ChallengeType
from panel.hosting import sites
from panel.security import quotas
from panel.toolkit import access, task_queue, validation


def clean_request(owner, domains, challenge, site=None, dns_credential=None, challenge_alias="", webroot="",
                  server_config=""):
    """The validated request: {"domains", "challenge_alias", "webroot", "server_config"};
    raises ValidationError keyed by field.

    With HTTP-01 a user may only ask for names of their own sites (certs.ownership;
    every order checks it again). The modes for servers the panel does not manage write
    into other servers' files and listen on their port: administrators only."""
    challenge = ChallengeType(challenge)
    if challenge.is_external:
        if not access.is_admin(owner):
            raise ValidationError({"challenge": [_("Only administrators may validate on servers the panel does "
                                                   "not manage.")]})
    try:
        names = validation.normalize_domain_list(domains)
    except ValidationError as exc:
        raise ValidationError({"domains": exc.messages})
    if challenge.acme_type == "http-01" and any(name.startswith("*.") for name in names):
        raise ValidationError({"domains": [_("Wildcard names can only be validated with DNS-01.")]})
    webroot, server_config = _clean_server_paths(challenge, webroot, server_config)
    if challenge == ChallengeType.DNS01 and dns_credential is None:
        raise ValidationError({"dns_credential": [_("DNS-01 through a provider needs DNS credentials.")]})
    if challenge != ChallengeType.DNS01 and dns_credential is not None:
        raise ValidationError({"dns_credential": [_("DNS credentials are only used with DNS-01 through a provider.")]})
    if challenge_alias:
        if challenge != ChallengeType.DNS01:
            raise ValidationError({"challenge_alias": [_("A challenge alias needs DNS-01 through a provider.")]})
        try:
            challenge_alias = validation.normalize_domain(challenge_alias, allow_wildcard=False)
        except ValidationError as exc:
            raise ValidationError({"challenge_alias": exc.messages})
    if site is not None:
        foreign = [name for name in names if not any(validation.name_covers(name, d) for d in site.domains)]
        if foreign:
            raise ValidationError({"domains": [_("Not names of this site: %(names)s") % {"names": ", ".join(foreign)}]})
    missing = ownership.names_not_on_sites(owner, names, challenge)
    if missing:
        raise ValidationError({"domains": [_("Add these names to one of your sites first: %(names)s")
                                           % {"names": ", ".join(missing)}]})
    return {"domains": names, "challenge_alias": challenge_alias, "webroot": webroot, "server_config": server_config}


def _clean_server_paths(challenge, webroot, server_config):
    """The paths a mode for servers the panel does not manage works on; each only with its mode."""
    uses_config = challenge in (ChallengeType.HTTP01_NGINX, ChallengeType.HTTP01_APACHE)
    if challenge == ChallengeType.HTTP01_WEBROOT:
        try:
            webroot = webroot_mode.validate_webroot(webroot)
        except ValidationError as exc:
            raise ValidationError({"webroot": exc.messages})
    elif webroot:
        raise ValidationError({"webroot": [_("A document root is only used with http-01-webroot.")]})
    if uses_config:
        try:
            server_config = external.validate_server_config(server_config)
        except ValidationError as exc:
            raise ValidationError({"server_config": exc.messages})
    elif server_config:
        raise ValidationError({"server_config": [_("A server config is only used with http-01-nginx or "
                                                   "http-01-apache.")]})
    return webroot, server_config


def request_certificate(owner, account, domains, key_type, challenge=ChallengeType.HTTP01, site=None,
                        dns_credential=None, challenge_alias="", webroot="", server_config="",
                        names_for_site=()) -> Certificate:
    """Store the certificate and queue its first order, together or not at all; raises
    ValidationError when the owner's certificate quota is used up. `names_for_site` (the SSL
    tab's wildcard tick) are added to the site first, in the same transaction, as the site's
    own edit would add them (panel.hosting.sites)."""
    with transaction.atomic():
        if names_for_site:
            sites.add_names(site, names_for_site, actor=owner)
        quotas.check_room_for_certificate(owner)
        certificate = Certificate.objects.create(owner=owner, account=account, domains=domains, key_type=key_type,
                                                 challenge=challenge, site=site, dns_credential=dns_credential,
                                                 challenge_alias=challenge_alias, webroot=webroot,
                                                 server_config=server_config)
        orders.start_order(certificate)
    return certificate


def request_with_account_at(owner, preset, email, domains, key_type, challenge,
                            site) -> Certificate:
    """The SSL tab's one click: the owner's account at the preset's CA, registered now if they
    have none, then request_certificate. The request is checked before (clean_request) and the
    quota and the queue here, so a refusal registers nothing; a CA that refuses the registration
    leaves nothing behind (certs.accounts.register_account raises certs.acme.AcmeError)."""
    quotas.check_room_for_certificate(owner)
    task_queue.require_reachable()
    account = accounts.account_at(owner, preset)
    if account is None:
        account = accounts.register_account(owner, preset.directory_url, email=email)
    return request_certificate(owner, account, domains, key_type, challenge, site)
