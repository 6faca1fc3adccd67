"""Forms of the certificate UI. The CA and certs.accounts have the last word on accounts."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from certs import cas, certificates
from certs.models import AcmeAccount, ChallengeType, KeyType
from panel import access, validation

CUSTOM_CA = "custom"


def account_label(account):
    preset = cas.preset_for_url(account.directory_url)
    return f"{account.email or _('no e-mail')} · {preset.label if preset else account.directory_url}"


class AccountChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return account_label(obj)


class IssueCertificateForm(forms.Form):
    """A certificate for some or all of a site's names, validated over HTTP-01."""

    account = AccountChoiceField(label=_("ACME account"), queryset=AcmeAccount.objects.none(), empty_label=None)
    key_type = forms.ChoiceField(label=_("Key type"), choices=KeyType.choices, initial=KeyType.EC256)
    domains = forms.MultipleChoiceField(label=_("Names"), widget=forms.CheckboxSelectMultiple)

    def __init__(self, user, site, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.site = user, site
        # Only the user's own accounts are offered, and only they validate: a foreign id is "not a choice".
        self.fields["account"].queryset = (
            access.scoped(AcmeAccount, user).filter(status=AcmeAccount.Status.VALID).defer("account_key", "eab_hmac_key")
        )
        self.fields["domains"].choices = [(name, name) for name in site.domains]
        # HTTP-01 cannot prove a wildcard, so those names start unticked.
        self.fields["domains"].initial = [name for name in site.domains if not name.startswith("*.")]

    def clean_domains(self):
        chosen = set(self.cleaned_data["domains"])
        names = [name for name in self.site.domains if name in chosen]  # the site's order: primary first
        try:
            return certificates.clean_request(self.user, names, ChallengeType.HTTP01, self.site)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["domains"])


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
