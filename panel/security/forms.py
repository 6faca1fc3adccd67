"""Forms of the account security pages: the login code, API tokens, the audit log's filters,
user accounts. The services in panel.security have the last word."""

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from panel.security import audit, homes, tokens, users

# django-otp refuses any code for 1, 2, 4... seconds after a wrong one: say so.
WRONG_CODE = _("This code is not valid. After a wrong code, wait a few seconds before trying again.")


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"), max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
    )


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
    granted_roots = forms.CharField(
        label=_("Granted directories"), required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocapitalize": "none", "spellcheck": "false"}),
    )

    def __init__(self, *args, home, **kwargs):
        """`home`: the user's home directory, shown with the granted directories."""
        super().__init__(*args, **kwargs)
        self.fields["granted_roots"].help_text = _(
            "One per line. Besides their home %(home)s, the user's document roots and install paths may lie "
            "inside these. Each must be inside CERTPANEL_ALLOWED_ROOTS or CERTPANEL_INSTALL_ROOTS."
        ) % {"home": home}

    def clean_granted_roots(self):
        lines = [line.strip() for line in self.cleaned_data["granted_roots"].splitlines() if line.strip()]
        return homes.clean_grants(lines)
