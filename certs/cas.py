"""Known ACME CAs. The database stores the directory URL; presets only help choose it."""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class CaPreset:
    code: str
    label: str
    directory_url: str
    eab_required: bool = False
    # Where the CA publishes the terms its accounts agree to (certs.acme registers with
    # termsOfServiceAgreed): shown beside the SSL tab's one-click registration.
    terms_url: str = ""


LETS_ENCRYPT_TERMS = "https://letsencrypt.org/repository/"  # lists the current subscriber agreement

PRESETS = {
    p.code: p
    for p in (
        CaPreset("letsencrypt", _("Let's Encrypt"),
                 "https://acme-v02.api.letsencrypt.org/directory", terms_url=LETS_ENCRYPT_TERMS),
        CaPreset("letsencrypt-staging", _("Let's Encrypt (staging)"),
                 "https://acme-staging-v02.api.letsencrypt.org/directory",
                 terms_url=LETS_ENCRYPT_TERMS),
        CaPreset("zerossl", _("ZeroSSL"), "https://acme.zerossl.com/v2/DV90", eab_required=True),
        CaPreset("google", _("Google Trust Services"), "https://dv.acme-v02.api.pki.goog/directory",
                 eab_required=True),
        CaPreset("google-staging", _("Google Trust Services (staging)"),
                 "https://dv.acme-v02.test-api.pki.goog/directory", eab_required=True),
        CaPreset("sslcom-ecc", _("SSL.com (ECC)"), "https://acme.ssl.com/sslcom-dv-ecc", eab_required=True),
        CaPreset("sslcom-rsa", _("SSL.com (RSA)"), "https://acme.ssl.com/sslcom-dv-rsa", eab_required=True),
    )
}
# An administrator's own additions (CERTPANEL_EXTRA_CAS), named by their code.
_taken = sorted(set(settings.EXTRA_CAS) & set(PRESETS))
if _taken:
    raise ImproperlyConfigured(f"CERTPANEL_EXTRA_CAS: {', '.join(_taken)} already names a built-in CA; choose another code")
PRESETS.update({code: CaPreset(code, code, url) for code, url in settings.EXTRA_CAS.items()})


def preset_for_url(url):
    return next((p for p in PRESETS.values() if p.directory_url == url), None)


def one_click_choices():
    """The CAs a user can be registered at without anything from them: no EAB keys needed."""
    return [(code, preset.label) for code, preset in PRESETS.items() if not preset.eab_required]
