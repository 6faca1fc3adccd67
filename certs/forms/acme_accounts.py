"""The form for a new ACME account. The CA and certs.accounts have the last word."""

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from certs import cas
from panel.toolkit import access, validation

CUSTOM_CA = "custom"


def _ca_choices():
    choices = []
    for code, preset in cas.PRESETS.items():
        label = preset.label
        if preset.eab_required:
            # One translatable pattern: Chinese gets full-width brackets, as its labels have.
            label = format_lazy(_("{ca} (needs EAB)"), ca=preset.label)
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
