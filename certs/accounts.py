"""ACME accounts: registration, and an AcmeClient for an account row."""

from functools import lru_cache
from pathlib import Path

import certifi
from django.conf import settings

from certs import cas
from certs.acme import AcmeClient, generate_account_key
from certs.models import AcmeAccount
from panel.models import PanelSettings
from panel.toolkit.files import write_atomic


@lru_cache(maxsize=1)
def trust_bundle():
    """What to verify the CA's TLS with: the system roots plus CERTPANEL_CA_BUNDLE, if set."""
    if not settings.CA_BUNDLE:
        return True
    combined = Path(settings.STATE_DIR) / "ca-bundle.pem"
    text = Path(certifi.where()).read_text() + "\n" + Path(settings.CA_BUNDLE).read_text()
    if not combined.exists() or combined.read_text() != text:
        write_atomic(combined, text)
    return str(combined)


def new_client(directory_url, account_key_pem, account_url=None):
    return AcmeClient(directory_url, account_key_pem, account_url, verify=trust_bundle(),
                      timeout=settings.ACME_NETWORK_TIMEOUT)


def register_account(owner, directory_url, email="", eab_kid="", eab_hmac_key="") -> AcmeAccount:
    """Register at the CA, then store the account. Nothing is stored if the CA refuses.

    Raises certs.acme.AcmeError with the CA's own words.
    """
    key_pem = generate_account_key()
    account_url = new_client(directory_url, key_pem).register(email, eab_kid, eab_hmac_key)
    return AcmeAccount.objects.create(
        owner=owner, directory_url=directory_url, email=email, eab_kid=eab_kid, eab_hmac_key=eab_hmac_key,
        account_key=key_pem, account_url=account_url,
    )


def default_ca():
    """The CA an administrator chose on the Settings page for one-click registration, or None
    when it is no longer a preset one can register at without keys from the CA."""
    preset = cas.PRESETS.get(PanelSettings.load().default_ca)
    return None if preset is None or preset.eab_required else preset


def account_at(owner, preset):
    """The owner's own usable account at the preset's CA, or None."""
    return (AcmeAccount.objects.filter(owner=owner, directory_url=preset.directory_url,
                                       status=AcmeAccount.Status.VALID).order_by("id").first())


_clients = {}


def client_for(account: AcmeAccount) -> AcmeClient:
    """A client per account and worker process: keeps the directory and nonces warm."""
    if not account.account_url:
        # Imported from files that did not say the account's URL: registering the same key
        # again finds the existing account (RFC 8555 7.3.1), so the CA sees no new one.
        reregister(account)
    cache_key = (account.pk, account.account_url)
    client = _clients.get(cache_key)
    if client is None:
        if len(_clients) > 64:
            _clients.clear()
        client = _clients[cache_key] = new_client(account.directory_url, account.account_key, account.account_url)
    return client


def reregister(account: AcmeAccount) -> None:
    """The CA lost the account (a test CA restarted, a CA reset): register the same key again
    and keep going, rather than fail every renewal of every certificate on it."""
    account_url = new_client(account.directory_url, account.account_key).register(
        account.email, account.eab_kid, account.eab_hmac_key
    )
    AcmeAccount.objects.filter(pk=account.pk).update(account_url=account_url)
    account.account_url = account_url
    _clients.clear()
