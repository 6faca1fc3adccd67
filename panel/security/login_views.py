"""Logging in: the password step, the second step for users with 2FA, and the lockout page.

A user with 2FA is not logged in by the password: the session only remembers, for a few
minutes, who passed it; Django's login() runs after the code step. django-axes counts wrong
passwords and wrong codes alike (both send user_login_failed) and locks the username at that
client address at the limit (panel.security.lockout, settings: AXES_*).
"""

import time

import django_otp
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render

from panel.security import lockout, twofactor
from panel.security.forms import WRONG_CODE, CodeForm

PENDING_LOGIN_KEY = "pending_login"
SECOND_STEP_SECONDS = 300  # time to type the code after the password


class PasswordStepView(LoginView):
    template_name = "panel/login.html"

    def form_valid(self, form):
        user = form.get_user()
        if not twofactor.has_two_factor(user):
            return super().form_valid(form)
        self.request.session[PENDING_LOGIN_KEY] = {
            "user": user.pk, "backend": user.backend, "next": self.get_success_url(), "since": time.time(),
        }
        return redirect("login-verify")


def second_step(request):
    """The code from the authenticator app, or a recovery code."""
    pending = request.session.get(PENDING_LOGIN_KEY)
    user = _pending_user(pending)
    if user is None:
        request.session.pop(PENDING_LOGIN_KEY, None)
        return redirect("login")
    credentials = {"username": user.get_username()}
    setattr(request, lockout.USERNAME_ATTRIBUTE, user.get_username())
    if not AxesProxyHandler.is_allowed(request, credentials):
        return _locked_out(request, credentials)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        device = twofactor.verify_code(user, form.cleaned_data["code"])
        if device is not None:
            del request.session[PENDING_LOGIN_KEY]
            login(request, user, backend=pending["backend"])
            django_otp.login(request, device)
            return redirect(pending["next"])
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        if getattr(request, "axes_locked_out", False):
            return _locked_out(request, credentials)
        form.add_error("code", WRONG_CODE)
    return render(request, "panel/login_verify.html", {"form": form})


def _pending_user(pending):
    if not pending or time.time() - pending["since"] > SECOND_STEP_SECONDS:
        return None
    return get_user_model().objects.filter(pk=pending["user"], is_active=True).first()


def _locked_out(request, credentials):
    request.session.pop(PENDING_LOGIN_KEY, None)
    return lockout_response(request, None, credentials)


def lockout_response(request, original_response, credentials):
    """The login page, saying the account is locked and for how long (AXES_LOCKOUT_CALLABLE)."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    minutes = lockout.minutes_left(username, get_client_ip_address(request))
    context = {"form": form, "locked_minutes": minutes, "next": request.POST.get("next", "")}
    return render(request, "panel/login.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
