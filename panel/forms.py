"""Forms of the hosting UI. Validation lives in panel.hosting.sites; forms only shape the input."""

import re

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from panel.hosting import sites
from panel.security import audit, tokens, users

# One per line, or separated by commas or spaces; full-width commas are common in Chinese text.
_DOMAIN_SEPARATORS = re.compile(r"[\s,，、]+")


def split_domains(text):
    return [name for name in _DOMAIN_SEPARATORS.split(text or "") if name]


class SiteForm(forms.Form):
    domains = forms.CharField(
        label=_("Domains"),
        required=False,  # panel.hosting.sites says what is missing, in the same words as the API
        widget=forms.Textarea(attrs={"rows": 4, "autocapitalize": "none", "spellcheck": "false",
                                     "placeholder": "example.com\nwww.example.com"}),
        help_text=_("One per line, or separated by commas or spaces. The first is the primary name."),
    )
    root = forms.CharField(
        label=_("Document root"), required=False,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false"}),
        help_text=_("For a static site: an absolute directory path."),
    )
    proxy_pass = forms.CharField(
        label=_("Reverse-proxy upstream"), required=False,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false",
                                      "placeholder": "http://127.0.0.1:3000"}),
        help_text=_("For a proxied application: the URL nginx passes requests to. Fill in this or the "
                    "document root, not both."),
    )
    force_https = forms.BooleanField(label=_("Redirect HTTP to HTTPS"), required=False)
    hsts = forms.BooleanField(label=_("HSTS (tell browsers to use HTTPS only)"), required=False)
    http2 = forms.BooleanField(label=_("HTTP/2"), required=False, initial=True)

    def __init__(self, *args, site=None, user=None, **kwargs):
        """`site`: the stored site being edited; its own names do not count as taken.
        `user`: who fills in the form; an admin's document root may lie outside the allowed roots."""
        if site is not None:
            kwargs.setdefault("initial", {
                "domains": "\n".join(site.domains), "root": site.root, "proxy_pass": site.proxy_pass,
                "force_https": site.force_https, "hsts": site.hsts, "http2": site.http2,
            })
        super().__init__(*args, **kwargs)
        self.site_pk = site.pk if site is not None else None
        self.user = user
        if settings.ALLOWED_ROOTS:
            self.fields["root"].widget.attrs["placeholder"] = f"{settings.ALLOWED_ROOTS[0]}/example.com"

    def clean(self):
        data = super().clean()
        try:
            data["domains"], data["root"], data["proxy_pass"] = sites.clean_site_fields(
                split_domains(data.get("domains")), data.get("root"), data.get("proxy_pass"),
                exclude_pk=self.site_pk, actor=self.user,
            )
        except ValidationError as exc:
            self.add_error(None, exc)  # a dict keyed by field: each message lands on its field
        return data


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("What the token is for, e.g. the script or machine that uses it."))
    scope = forms.ChoiceField(label=_("Access"), choices=tokens.Scope.choices, initial=tokens.Scope.READ,
                              widget=forms.RadioSelect)
    expires_in_days = forms.IntegerField(label=_("Expires after (days)"), required=False, min_value=1,
                                         max_value=3650, help_text=_("Leave empty for a token that never expires."))


class AuditFilterForm(forms.Form):
    """The audit log's filters; every one optional. Dates are whole days, UTC."""

    user = forms.CharField(label=_("User"), required=False, max_length=150)
    action = forms.ChoiceField(label=_("Action"), required=False,
                               choices=[("", _("Any action"))] + audit.Action.choices)
    object_type = forms.ChoiceField(label=_("Object type"), required=False,
                                    choices=[("", _("Any type"))] + audit.ObjectType.choices)
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    address = forms.GenericIPAddressField(label=_("Address"), required=False)

    def filter(self, entries):
        data = self.cleaned_data
        if data["user"]:
            # The actor, or the account a (failed) login was for.
            entries = entries.filter(Q(actor_label=data["user"])
                                     | Q(object_type=audit.ObjectType.USER, object_label=data["user"]))
        if data["action"]:
            entries = entries.filter(action=data["action"])
        if data["object_type"]:
            entries = entries.filter(object_type=data["object_type"])
        if data["since"]:
            entries = entries.filter(at__date__gte=data["since"])
        if data["until"]:
            entries = entries.filter(at__date__lte=data["until"])
        if data["address"]:
            entries = entries.filter(address=data["address"])
        return entries


ROLE_CHOICES = [(users.Role.USER, _("User: own sites and certificates")),
                (users.Role.ADMIN, _("Administrator: everything, including users and presets"))]


class UserCreateForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150,
                               widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false",
                                                             "autocomplete": "off"}))
    password = forms.CharField(label=_("Password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES, initial=users.Role.USER,
                             widget=forms.RadioSelect)

    def clean_username(self):
        username = self.cleaned_data["username"]
        UserModel = get_user_model()
        try:
            UserModel.username_validator(username)
        except ValidationError as exc:
            raise ValidationError(exc.messages)
        if UserModel.objects.filter(username__iexact=username).exists():
            raise ValidationError(_("A user with this name already exists."))
        return username

    def clean(self):
        data = super().clean()
        if data.get("password"):
            try:
                password_validation.validate_password(data["password"],
                                                      get_user_model()(username=data.get("username", "")))
            except ValidationError as exc:
                self.add_error("password", exc)
        return data


class UserEditForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES, widget=forms.RadioSelect)
    is_active = forms.BooleanField(label=_("Active: may log in"), required=False)
    max_sites = forms.IntegerField(label=_("Maximum sites"), required=False, min_value=0,
                                   help_text=_("Blank: no limit."))
    max_certificates = forms.IntegerField(label=_("Maximum certificates"), required=False, min_value=0,
                                          help_text=_("Blank: no limit. Counts issued and uploaded certificates."))
