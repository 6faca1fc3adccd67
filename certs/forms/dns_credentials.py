"""DNS credentials: first the provider, then that provider's declared fields."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from certs import dns_credentials
from certs.dns import registry


def _provider_choices():
    """The providers most used by readers of the page's language first (registry.FEATURED), then
    every other by label: users look for a name, not a code. The list says which ones are for
    administrators only."""
    labels = {entry["code"]: _("%(label)s (administrators only)") % {"label": entry["label"]}
              if entry["admin_only"] else entry["label"] for entry in registry.catalog()}
    featured = registry.featured_codes()
    others = sorted((code for code in labels if code not in featured),
                    key=lambda code: str(labels[code]).casefold())
    return [(_("Most used"), [(code, labels[code]) for code in featured]),
            (_("All others, A–Z"), [(code, labels[code]) for code in others])]


class DnsProviderChoiceForm(forms.Form):
    """Step one, sent by GET: which provider the credentials are for."""

    provider = forms.ChoiceField(label=_("DNS provider"), choices=_provider_choices)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_provider(self):
        # Said at once rather than after the user has filled in the next page.
        code = self.cleaned_data["provider"]
        refusal = registry.admin_only_refusal(registry.provider_class(code), {}, self.user)
        if refusal:
            raise ValidationError(refusal)
        return code


class DnsCredentialForm(forms.Form):
    """Step two: a name, the provider's own fields and an optional propagation timeout.

    Sensitive fields are password inputs that never render a value back, so a form shown
    again after an error asks for them again. Editing (`credential`), the other fields show
    their stored values and a secret field left empty keeps its stored secret.
    certs.dns_credentials has the last word."""

    FIELD_PREFIX = "cred_"
    CLEAR_PREFIX = "clear_"

    provider = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(label=_("Name"), max_length=200,
                           help_text=_("To tell these credentials apart, e.g. the account or zone they are for."))
    propagation_timeout = forms.IntegerField(
        label=_("Propagation timeout (seconds)"), required=False, min_value=1, max_value=86400,
        help_text=_("How long to wait for the TXT records to show on every authoritative name server. "
                    "Blank: the provider's default."),
    )

    def __init__(self, provider, *args, user, credential=None, **kwargs):
        """provider: a registry.catalog() entry; user: who will own the credentials;
        credential: the DnsCredential being edited, if any."""
        initial = {"provider": provider["code"]}
        stored = {}
        if credential is not None:
            stored = credential.values()
            initial.update(name=credential.name, propagation_timeout=credential.propagation_timeout)
        super().__init__(*args, initial=initial, **kwargs)
        self.provider = provider
        self.user = user
        self.credential = credential
        for spec in provider["fields"]:
            if spec["sensitive"]:
                widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            else:
                widget = forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
            if spec["default"]:
                widget.attrs["placeholder"] = spec["default"]
            kept = spec["sensitive"] and spec["name"] in stored
            help_text = spec["help"]
            if kept:
                widget.attrs["placeholder"] = _("Unchanged")
                help_text = " ".join(filter(None, [
                    str(_("Set: leave empty to keep the stored value, or type a new one to replace it.")),
                    str(help_text)]))
            if credential is None:
                value = None if spec["sensitive"] else spec["default"] or None
            else:
                value = None if spec["sensitive"] else stored.get(spec["name"], "")
            field = forms.CharField(label=spec["label"], required=spec["required"] and not kept,
                                    help_text=help_text, max_length=4096, widget=widget, initial=value)
            field.sensitive = spec["sensitive"]
            self.fields[self.FIELD_PREFIX + spec["name"]] = field
            if kept and not spec["required"]:  # one of a provider's alternatives: it may go
                self.fields[self.CLEAR_PREFIX + spec["name"]] = forms.BooleanField(
                    label=format_lazy(_("Remove the stored {field}"), field=spec["label"]), required=False)

    def provider_fields(self):
        """The provider's fields, each followed by its "remove the stored value" tick if it has one."""
        names = [prefix + spec["name"] for spec in self.provider["fields"]
                 for prefix in (self.FIELD_PREFIX, self.CLEAR_PREFIX)]
        return [self[name] for name in names if name in self.fields]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {spec["name"]: None if data.get(self.CLEAR_PREFIX + spec["name"])
                  else data.get(self.FIELD_PREFIX + spec["name"]) or "" for spec in self.provider["fields"]}
        try:
            if self.credential is None:
                data["credentials"] = dns_credentials.clean_values(self.provider["code"], values, owner=self.user)
            else:
                data["credentials"] = dns_credentials.clean_changes(self.credential, values)
        except ValidationError as exc:
            for messages in exc.message_dict.values():
                for message in messages:
                    self.add_error(None, message)
        return data
