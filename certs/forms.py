"""Forms of the certificate UI. The CA and certs.accounts have the last word on accounts."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from certs import cas, certificates, dns_credentials, importers, notifications, upload
from certs.dns import registry
from certs.dns.base import DnsProviderError
from certs.importers import archive as archive_import
from certs.models import (EXTERNAL_CHALLENGES, SITE_CHALLENGES, AcmeAccount, ChallengeType, DnsCredential, KeyType,
                          NotificationEvent, ReloadPreset)
from panel.models import Site
from panel.toolkit import access, validation

CUSTOM_CA = "custom"


def account_label(account):
    preset = cas.preset_for_url(account.directory_url)
    email = account.email or _("no e-mail")  # outside the f-string, where xgettext finds it
    return f"{email} · {preset.label if preset else account.directory_url}"


def provider_label(code):
    """The provider's label, or its code if it is no longer registered."""
    try:
        return str(registry.provider_class(code).label)
    except DnsProviderError:
        return code


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
        self.fields["domains"].choices = [(name, name) for name in site.domains]
        # HTTP-01 cannot prove a wildcard, so those names start unticked.
        self.fields["domains"].initial = [name for name in site.domains if not name.startswith("*.")]
        self.wildcard = self._extra_wildcard()
        if self.wildcard:
            self.fields["include_wildcard"].label = format_lazy(_("Also {name}"), name=self.wildcard)
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


def _ca_choices():
    choices = []
    for code, preset in cas.PRESETS.items():
        label = format_lazy("{} ({})", preset.label, _("needs EAB")) if preset.eab_required else preset.label
        choices.append((code, label))
    return choices + [(CUSTOM_CA, _("Other CA: enter its directory URL"))]


class AcmeAccountForm(forms.Form):
    ca = forms.ChoiceField(label=_("Certificate authority"), choices=_ca_choices, initial="letsencrypt")
    directory_url = forms.URLField(
        label=_("ACME directory URL"), required=False, max_length=1024, assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://ca.example/acme/directory"}),
        help_text=_("Only for another CA: the URL of its ACME directory."),
    )
    email = forms.EmailField(
        label=_("E-mail"), required=False,
        help_text=_("The CA may write here about expiring certificates or problems with the account."),
    )
    eab_kid = forms.CharField(label=_("EAB key id"), required=False, max_length=512,
                              widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    # Never rendered back: a re-displayed form asks for it again.
    eab_hmac_key = forms.CharField(label=_("EAB HMAC key"), required=False, strip=True,
                                   widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The panel fetches whatever directory URL is given: for anyone but an admin that would
        # be a request forgery into the server's own network. Users pick a preset.
        if not access.is_admin(user):
            self.fields["ca"].choices = [choice for choice in self.fields["ca"].choices if choice[0] != CUSTOM_CA]
            del self.fields["directory_url"]

    def clean_eab_hmac_key(self):
        value = self.cleaned_data["eab_hmac_key"]
        return validation.validate_eab_hmac_key(value) if value else value

    def clean(self):
        data = super().clean()
        preset = cas.PRESETS.get(data.get("ca") or "")
        if preset:
            data["directory_url"] = preset.directory_url
        elif data.get("ca") == CUSTOM_CA and not data.get("directory_url") and "directory_url" not in self.errors:
            self.add_error("directory_url", _("Give the URL of the CA's ACME directory."))
        kid, hmac_key = data.get("eab_kid"), data.get("eab_hmac_key")
        if bool(kid) != bool(hmac_key):
            self.add_error("eab_hmac_key" if kid else "eab_kid",
                           _("External Account Binding needs both the key id and the HMAC key."))
        elif preset and preset.eab_required and not kid:
            self.add_error("eab_kid", _("%(ca)s requires External Account Binding: give the key id and HMAC key "
                                        "from your account page there.") % {"ca": preset.label})
        return data


# --- DNS credentials: first the provider, then that provider's declared fields.


def _provider_choices():
    """Every registered provider, by label: users look for a name, not a code."""
    return sorted(((entry["code"], entry["label"]) for entry in registry.catalog()),
                  key=lambda choice: choice[1].casefold())


class DnsProviderChoiceForm(forms.Form):
    """Step one, sent by GET: which provider the credentials are for."""

    provider = forms.ChoiceField(label=_("DNS provider"), choices=_provider_choices)


class DnsCredentialForm(forms.Form):
    """Step two: a name, the provider's own fields and an optional propagation timeout.

    Sensitive fields are password inputs that never render a value back, so a form shown
    again after an error asks for them again. certs.dns_credentials has the last word."""

    FIELD_PREFIX = "cred_"

    provider = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(label=_("Name"), max_length=200,
                           help_text=_("To tell these credentials apart, e.g. the account or zone they are for."))
    propagation_timeout = forms.IntegerField(
        label=_("Propagation timeout (seconds)"), required=False, min_value=1, max_value=86400,
        help_text=_("How long to wait for the TXT records to show on every authoritative name server. "
                    "Blank: the provider's default."),
    )

    def __init__(self, provider, *args, **kwargs):
        """provider: a registry.catalog() entry."""
        super().__init__(*args, initial={"provider": provider["code"]}, **kwargs)
        self.provider = provider
        for spec in provider["fields"]:
            if spec["sensitive"]:
                widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            else:
                widget = forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
            if spec["default"]:
                widget.attrs["placeholder"] = spec["default"]
            field = forms.CharField(label=spec["label"], required=spec["required"], help_text=spec["help"],
                                    max_length=4096, widget=widget,
                                    initial=None if spec["sensitive"] else spec["default"] or None)
            field.sensitive = spec["sensitive"]
            self.fields[self.FIELD_PREFIX + spec["name"]] = field

    def provider_fields(self):
        return [self[self.FIELD_PREFIX + spec["name"]] for spec in self.provider["fields"]]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {spec["name"]: data.get(self.FIELD_PREFIX + spec["name"]) or "" for spec in self.provider["fields"]}
        try:
            data["credentials"] = dns_credentials.clean_values(self.provider["code"], values)
        except ValidationError as exc:
            for messages in exc.message_dict.values():
                for message in messages:
                    self.add_error(None, message)
        return data


# --- uploading a certificate issued elsewhere


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


class NotificationChannelForm(forms.Form):
    """A channel: a name, an apprise URL (it holds tokens: a password input that never renders a
    value back) and the events to send."""

    name = forms.CharField(label=_("Name"), max_length=200)
    url = forms.CharField(
        label=_("Apprise URL"), max_length=2048,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Any apprise URL: json://, mailto://, tgram://, slack://, dingtalk://, wecom://, feishu://… "
                    "or django-mail://you@example.com for the panel's own mail settings. It holds tokens: "
                    "stored encrypted, never shown again."),
    )
    events = forms.MultipleChoiceField(label=_("Send"), choices=NotificationEvent.choices,
                                       initial=NotificationEvent.values, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, user=None, **kwargs):
        """user: who adds the channel; only an admin may send into the server's own network."""
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_url(self):
        return notifications.clean_url(self.cleaned_data["url"],
                                       allow_internal=self.user is not None and access.is_admin(self.user))

    def clean_events(self):
        chosen = self.cleaned_data["events"]
        return [event for event in NotificationEvent.values if event in chosen]


# --- reload presets (admins only)


class CommandWordsField(forms.CharField):
    """An argv list entered one word per line: a word may hold spaces, and nothing is shell syntax."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocapitalize": "none",
                                   "placeholder": "/usr/bin/systemctl\nreload\nnginx"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class ReloadPresetForm(forms.ModelForm):
    """ReloadPreset.clean has the rules: an absolute program path, a timeout in range."""

    command = CommandWordsField(label=_("Command"), help_text=_("One word per line: the program by its absolute "
                                                                "path, then each argument. No shell is involved."))

    class Meta:
        model = ReloadPreset
        fields = ["name", "command", "timeout_seconds"]
        labels = {"name": _("Name"), "timeout_seconds": _("Timeout (seconds)")}


# --- import from other ACME clients (admins only)


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.get_username()


class ImportForm(forms.Form):
    """An archive of an acme.sh home or a certbot config dir; certs.importers.archive does the rest."""

    archive = forms.FileField(label=_("Archive"), help_text=_(
        ".tar.gz, .tgz, .tar or .zip of an acme.sh home (e.g. ~/.acme.sh) or a certbot config dir (e.g. "
        "/etc/letsencrypt); its top folder may be that directory or hold it."))
    client = forms.ChoiceField(label=_("Made by"), required=False, choices=[
        ("", _("Detect from the files")), (importers.ACMESH, "acme.sh"), (importers.CERTBOT, "certbot")])
    owner = UserChoiceField(label=_("Owner"), queryset=get_user_model().objects.none(), help_text=_(
        "Who owns the imported certificates, accounts and DNS credentials."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")

    def clean_archive(self):
        archive = self.cleaned_data["archive"]
        if not archive.name.lower().endswith(archive_import.SUFFIXES):
            raise ValidationError(_("Upload a .tar.gz, .tgz, .tar or .zip file."))
        return archive
