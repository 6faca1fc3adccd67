"""Forms for a certificate: requested for a site, requested for a server the panel does not
manage (admins), or uploaded with its key. certs.certificates and certs.upload have the last word."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from certs import cas, certificates, upload
from certs.dns_credentials import provider_label
from certs.models import EXTERNAL_CHALLENGES, SITE_CHALLENGES, AcmeAccount, ChallengeType, DnsCredential, KeyType
from panel.models import Site
from panel.toolkit import access, validation


def account_label(account):
    preset = cas.preset_for_url(account.directory_url)
    email = account.email or _("no e-mail")  # outside the f-string, where xgettext finds it
    return f"{email} · {preset.label if preset else account.directory_url}"


class AccountChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return account_label(obj)


class DnsCredentialChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name} · {provider_label(obj.provider)}"


class IssueCertificateForm(forms.Form):
    """A certificate for some or all of a site's names, validated over HTTP-01 or DNS-01."""

    account = AccountChoiceField(label=_("ACME account"), queryset=AcmeAccount.objects.none(), empty_label=None)
    key_type = forms.ChoiceField(label=_("Key type"), choices=KeyType.choices, initial=KeyType.EC256)
    # Left out by older clients of this form: HTTP-01, as before DNS-01 existed.
    challenge = forms.ChoiceField(label=_("Validation method"), choices=[(c.value, c.label) for c in SITE_CHALLENGES],
                                  required=False, initial=ChallengeType.HTTP01, widget=forms.RadioSelect)
    # certs.certificates.clean_request says when names are missing, in the same words as the API.
    domains = forms.MultipleChoiceField(label=_("Names"), widget=forms.CheckboxSelectMultiple, required=False)
    include_wildcard = forms.BooleanField(required=False)
    dns_credential = DnsCredentialChoiceField(label=_("DNS credentials"), queryset=DnsCredential.objects.none(),
                                              required=False, empty_label="–")
    challenge_alias = forms.CharField(
        label=_("Challenge alias (optional)"), required=False, max_length=253,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false",
                                      "placeholder": "acme.example.net"}),
        help_text=_("When _acme-challenge of each name is a CNAME to _acme-challenge.<alias>: the TXT records "
                    "are written in the alias's zone with these credentials."),
    )

    def __init__(self, user, site, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.site = user, site
        # Only the user's own accounts are offered, and only they validate: a foreign id is "not a choice".
        self.fields["account"].queryset = (
            access.scoped(AcmeAccount, user).filter(status=AcmeAccount.Status.VALID).defer("account_key", "eab_hmac_key")
        )
        credentials = access.scoped(DnsCredential, user).defer("credentials")
        self.fields["dns_credential"].queryset = credentials
        own = list(credentials.values_list("pk", flat=True)[:2])
        self.has_dns_credentials = bool(own)
        if len(own) == 1:
            self.fields["dns_credential"].initial = own[0]
        self.fields["domains"].choices = [(name, validation.unicode_domain(name))
                                          for name in site.domains]
        # HTTP-01 cannot prove a wildcard, so those names start unticked.
        self.fields["domains"].initial = [name for name in site.domains if not name.startswith("*.")]
        self.wildcard = self._extra_wildcard()
        if self.wildcard:
            shown = validation.unicode_domain(self.wildcard)
            self.fields["include_wildcard"].label = format_lazy(_("Also {name}"), name=shown)
            self.fields["include_wildcard"].help_text = _("Wildcard names need DNS-01.")
        else:
            del self.fields["include_wildcard"]

    def _extra_wildcard(self):
        """*.<primary domain>, unless the site lists it already (then it is one of the names)."""
        primary = self.site.primary_domain or (self.site.domains[0] if self.site.domains else "")
        if not primary or primary.startswith("*."):
            return None
        wildcard = f"*.{primary}"
        return None if wildcard in self.site.domains else wildcard

    def clean_challenge(self):
        return ChallengeType(self.cleaned_data["challenge"] or ChallengeType.HTTP01)

    def clean(self):
        data = super().clean()
        challenge = data.get("challenge")
        if challenge is None or "domains" in self.errors:
            return data
        chosen = set(data.get("domains") or [])
        names = [name for name in self.site.domains if name in chosen]  # the site's order: primary first
        if data.get("include_wildcard") and self.wildcard:
            names.insert(1 if names and names[0] == self.wildcard[2:] else len(names), self.wildcard)
        # The credential and alias fields are only shown for DNS-01 through a provider; for the
        # other methods whatever they still hold is not part of the request.
        via_provider = challenge == ChallengeType.DNS01
        if not via_provider:
            data["dns_credential"], data["challenge_alias"] = None, ""
            for name in ("dns_credential", "challenge_alias"):
                self.errors.pop(name, None)
        elif "dns_credential" in self.errors or "challenge_alias" in self.errors:
            return data
        try:
            data.update(certificates.clean_request(
                self.user, names, challenge, self.site, data.get("dns_credential"), data.get("challenge_alias", "")
            ))
        except ValidationError as exc:
            self.add_error(None, exc)  # keyed by field: each message lands on its field
        return data


class ExternalCertificateForm(forms.Form):
    """Admins: a certificate for a server the panel does not manage (acme.sh --webroot,
    --standalone, --nginx, --apache); install targets deliver it there."""

    account = AccountChoiceField(label=_("ACME account"), queryset=AcmeAccount.objects.none(), empty_label=None)
    domains = forms.CharField(
        label=_("Names"), max_length=10000,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false",
                                      "placeholder": "example.com www.example.com"}),
        help_text=_("Separated by spaces or commas."),
    )
    key_type = forms.ChoiceField(label=_("Key type"), choices=KeyType.choices, initial=KeyType.EC256)
    challenge = forms.ChoiceField(label=_("Validation method"), choices=[(c.value, c.label) for c in EXTERNAL_CHALLENGES],
                                  initial=ChallengeType.HTTP01_WEBROOT, widget=forms.RadioSelect)
    webroot = forms.CharField(
        label=_("Document root"), required=False, max_length=4096,
        widget=forms.TextInput(attrs={"spellcheck": "false", "placeholder": "/var/www/example"}),
        help_text=_("For http-01-webroot: the directory the server serves the names from over plain HTTP."),
    )
    server_config = forms.CharField(
        label=_("Server config file"), required=False, max_length=4096,
        widget=forms.TextInput(attrs={"spellcheck": "false", "placeholder": "/etc/nginx/sites-enabled/example"}),
        help_text=_("For http-01-nginx and http-01-apache: the file with the server block of these names."),
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["account"].queryset = (
            access.scoped(AcmeAccount, user).filter(status=AcmeAccount.Status.VALID).defer("account_key", "eab_hmac_key")
        )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data.update(certificates.clean_request(
                self.user, data["domains"].replace(",", " ").split(), data["challenge"],
                webroot=data["webroot"].strip(), server_config=data["server_config"].strip(),
            ))
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


class SecretTextarea(forms.Textarea):
    """A textarea that never renders its value back: a form shown again asks for the key again."""

    def format_value(self, value):
        return None


class SiteChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.primary_domain


class UploadCertificateForm(forms.Form):
    """PEM text pasted or chosen as files (a file wins over pasted text); certs.upload has the last word."""

    site = SiteChoiceField(label=_("Attach to site"), queryset=Site.objects.none(), required=False,
                           empty_label=_("No site: only store it"),
                           help_text=_("The site serves this certificate at once; it must cover all of the "
                                       "site's names."))
    certificate = forms.CharField(
        label=_("Certificate"), required=False, max_length=upload.MAX_CERTIFICATE_CHARS, strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "placeholder": "-----BEGIN CERTIFICATE-----"}),
        help_text=_("PEM: the certificate first, optionally followed by its chain (a full chain file)."),
    )
    certificate_file = forms.FileField(label=_("…or a certificate file"), required=False)
    chain = forms.CharField(
        label=_("Chain (optional)"), required=False, max_length=upload.MAX_CERTIFICATE_CHARS, strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text=_("PEM: the intermediate certificates, each followed by its issuer."),
    )
    chain_file = forms.FileField(label=_("…or a chain file"), required=False)
    private_key = forms.CharField(
        label=_("Private key"), required=False, max_length=upload.MAX_KEY_CHARS, strip=False,
        widget=SecretTextarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off",
                                     "placeholder": "-----BEGIN PRIVATE KEY-----"}),
        help_text=_("PEM, RSA or EC, without a password. Stored encrypted; never shown again."),
    )
    private_key_file = forms.FileField(label=_("…or a key file"), required=False)

    FILE_FIELDS = {"certificate": "certificate_file", "chain": "chain_file", "private_key": "private_key_file"}

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["site"].queryset = upload.attachable_sites(user).only("id", "primary_domain", "domains")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        for text_field, file_field in self.FILE_FIELDS.items():
            if data.get(file_field):
                data[text_field] = self._file_text(file_field, self.fields[text_field].max_length)
        if self.errors:
            return data
        try:
            data["upload"] = upload.check_upload(self.user, data["certificate"], data["chain"], data["private_key"],
                                                 data["site"])
        except ValidationError as exc:
            self.add_error(None, exc)  # keyed by field: each message lands on its field
        return data

    def _file_text(self, field, max_chars):
        uploaded = self.cleaned_data[field]
        content = uploaded.read(max_chars + 1)
        if len(content) > max_chars:
            self.add_error(field, _("This file is too large for a PEM certificate or key."))
            return ""
        try:
            return content.decode("ascii")
        except UnicodeDecodeError:
            self.add_error(field, _("This is not a PEM text file; convert a DER or PFX file to PEM first."))
            return ""
