"""Two-factor authentication: a TOTP device (an authenticator app) and recovery codes.

A user has at most one confirmed TOTP device and, with it, one static device holding
RECOVERY_CODE_COUNT single-use recovery codes. A TOTP device counts only once the user has
typed a code from it (it is "confirmed"); until then the panel treats the user as without 2FA.
"""

from base64 import b32encode

import django_otp
import qrcode
import qrcode.image.svg
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from panel.models import PanelSettings

RECOVERY_CODE_COUNT = 10


def has_two_factor(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def two_factor_required():
    return PanelSettings.load().require_two_factor


def unconfirmed_totp_device(user):
    """The device being set up: the same one (and QR code) until the user confirms it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def secret_text(device):
    """The TOTP secret as an app expects it typed: base32, in groups of four."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def qr_code_svg(device):
    """The device's otpauth:// URL as an inline SVG QR code: no script, no outside service."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def confirm_totp_device(device, code):
    """Activate the device if the code is right; returns the new recovery codes, or None."""
    if not django_otp.verify_token(device.user, device.persistent_id, _normalize(code)):
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return new_recovery_codes(device.user)


def new_recovery_codes(user):
    """Replace the user's recovery codes; the plain codes are returned to be shown once."""
    with transaction.atomic():
        device, _created = StaticDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def recovery_codes_left(user):
    return StaticToken.objects.filter(device__user=user).count()


def verify_code(user, code):
    """The confirmed device that accepts the code (an app's code, or a recovery code, which is
    then used up), or None. django-otp slows down guessing: after a wrong code the next one is
    refused for 1, 2, 4... seconds."""
    code = _normalize(code)
    model = TOTPDevice if code.isdigit() else StaticDevice
    device = model.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return None
    return django_otp.verify_token(user, device.persistent_id, code)


def disable(user):
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def _normalize(code):
    # People copy codes with spaces ("123 456") and read recovery codes aloud in capitals.
    return "".join(code.split()).lower()


class TwoFactorMiddleware:
    """Holds every signed-in session to the 2FA rules.

    - A user with 2FA whose session never passed the second step (it began before 2FA was
      turned on, elsewhere) is logged out: a password alone never keeps a session.
    - While an administrator requires 2FA, a user without it reaches only the setup page (and
      logging out) until it is done.
    """

    ALWAYS_ALLOWED = {"ui:two-factor-enable", "login", "login-verify", "logout", "set_language"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if has_two_factor(user):
            logout(request)
            return redirect_to_login(request.get_full_path())
        if request.resolver_match.view_name in self.ALWAYS_ALLOWED or not two_factor_required():
            return None
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": _("Set up two-factor authentication in the panel first.")}, status=403)
        return redirect("ui:two-factor-enable")
