"""Pages under the user menu's "Security" (2FA, recovery codes, password) and the staff-only
Settings page. Thin: form -> one panel.security.twofactor call -> redirect or page."""

import django_otp
from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.messages.views import SuccessMessageMixin
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from certs import cas
from panel.hosting import sites
from panel.models import PanelSettings
from panel.security import twofactor
from panel.security.forms import WRONG_CODE, CodeForm
from panel.toolkit import outbound
from panel.toolkit.access import admin_required


@login_required
def security(request):
    context = {
        "nav": "security",
        "two_factor": twofactor.has_two_factor(request.user),
        "recovery_codes_left": twofactor.recovery_codes_left(request.user),
        "two_factor_required": twofactor.two_factor_required(),
    }
    return render(request, "panel/security.html", context)


@login_required
def two_factor_enable(request):
    if twofactor.has_two_factor(request.user):
        return redirect("ui:security")
    device = twofactor.unconfirmed_totp_device(request.user)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        codes = twofactor.confirm_totp_device(device, form.cleaned_data["code"])
        if codes is not None:
            django_otp.login(request, device)  # this session has just proved the second factor
            messages.success(request, _("Two-factor authentication is on."))
            return _show_recovery_codes(request, codes)
        form.add_error("code", WRONG_CODE)
    context = {
        "nav": "security", "form": form, "qr_code": twofactor.qr_code_svg(device),
        "secret": twofactor.secret_text(device), "two_factor_required": twofactor.two_factor_required(),
    }
    return render(request, "panel/two_factor_enable.html", context)


@login_required
def two_factor_disable(request):
    return _with_current_code(request, "panel/two_factor_disable.html", _disable)


@login_required
def recovery_codes(request):
    return _with_current_code(request, "panel/recovery_codes_new.html", _regenerate)


def _regenerate(request):
    return _show_recovery_codes(request, twofactor.new_recovery_codes(request.user))


def _disable(request):
    twofactor.disable(request.user)
    messages.success(request, _("Two-factor authentication is off."))
    return redirect("ui:security")


def _with_current_code(request, template, action):
    """A change to 2FA itself: only with a current code (from the app, or a recovery code)."""
    if not twofactor.has_two_factor(request.user):
        return redirect("ui:security")
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        if twofactor.verify_code(request.user, form.cleaned_data["code"]) is not None:
            return action(request)
        form.add_error("code", WRONG_CODE)
    return render(request, template, {"nav": "security", "form": form})


def _show_recovery_codes(request, codes):
    # Shown in this response only: the panel cannot show them again.
    return render(request, "panel/recovery_codes.html", {"nav": "security", "codes": codes})


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    # Django's view keeps this session logged in and ends the user's other sessions.
    template_name = "panel/password_change.html"
    success_url = reverse_lazy("ui:security")
    success_message = gettext_lazy("Your password has been changed.")
    extra_context = {"nav": "security"}


class PanelSettingsForm(forms.ModelForm):
    class Meta:
        model = PanelSettings
        fields = ["require_two_factor", "outbound_allow_list", "default_ca"]
        widgets = {"outbound_allow_list": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Chosen from this installation's presets (CERTPANEL_EXTRA_CAS among them): the model
        # keeps a code.
        stored = self.fields["default_ca"]
        self.fields["default_ca"] = forms.ChoiceField(
            label=stored.label, help_text=stored.help_text, choices=cas.one_click_choices,
            required=False)

    def clean_default_ca(self):
        # A form sent without the field (a script written before it existed) keeps the stored CA.
        return self.cleaned_data["default_ca"] or self.instance.default_ca

    def clean_outbound_allow_list(self):
        return outbound.allow_list_text(self.cleaned_data["outbound_allow_list"])


class SharedNamesForm(forms.ModelForm):
    """The Settings page's section on names: registrable domains every user may add names under."""

    class Meta:
        model = PanelSettings
        fields = ["shared_names"]
        widgets = {"shared_names": forms.Textarea(attrs={"rows": 4, "autocapitalize": "none", "spellcheck": "false"})}

    def clean_shared_names(self):
        return sites.clean_shared_names(self.cleaned_data["shared_names"])


@admin_required
def panel_settings(request):
    data = request.POST if request.method == "POST" else None
    row = PanelSettings.load()
    form, names_form = PanelSettingsForm(data, instance=row), SharedNamesForm(data, instance=row)
    if all([form.is_valid(), names_form.is_valid()]):
        form.save()
        names_form.save()
        messages.success(request, _("Settings saved."))
        return redirect("ui:settings")
    return render(request, "panel/settings.html", {"nav": "settings", "form": form, "names_form": names_form})
