"""Two-factor authentication: a TOTP device (an authenticator app) and recovery codes.

A user has at most one confirmed TOTP device and, with it, one static device holding
RECOVERY_CODE_COUNT single-use recovery codes. A TOTP device counts only once the user has
typed a code from it (it is "confirmed"); until then the panel treats the user as without 2FA.
The TOTP key and the recovery codes are encrypted at rest (panel.models.AuthenticatorDevice,
RecoveryCodeDevice): django-otp verifies them as it would its own devices.
"""

import secrets
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
from django_otp import DEVICE_ID_SESSION_KEY

from panel.models import AuthenticatorDevice, PanelSettings, RecoveryCode, RecoveryCodeDevice

RECOVERY_CODE_COUNT = 10

# A session that passed the second step before migration 0008 names django-otp's own device
# rows, which moved (same ids) to the encrypted models.
MOVED_DEVICES = {
    "otp_totp.totpdevice": AuthenticatorDevice.model_label(),
    "otp_static.staticdevice": RecoveryCodeDevice.model_label(),
}


def has_two_factor(user):
    return AuthenticatorDevice.objects.filter(user=user, confirmed=True).exists()


def two_factor_required():
    return PanelSettings.load().require_two_factor


def unconfirmed_totp_device(user):
    """The device being set up: the same one (and QR code) until the user confirms it."""
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=False).first()
    return device or AuthenticatorDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


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
        AuthenticatorDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return new_recovery_codes(device.user)


def new_recovery_codes(user):
    """Replace the user's recovery codes; the plain codes are returned to be shown once."""
    with transaction.atomic():
        device, _created = RecoveryCodeDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
        device.codes.all().delete()
        codes = [random_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        RecoveryCode.objects.bulk_create(RecoveryCode(device=device, code=code) for code in codes)
    return codes


def random_recovery_code():
    """Eight base32 characters, as django-otp's static tokens: codes issued before stay valid."""
    return b32encode(secrets.token_bytes(5)).decode().lower()


def recovery_codes_left(user):
    return RecoveryCode.objects.filter(device__user=user).count()


def verify_code(user, code):
    """The confirmed device that accepts the code (an app's code, or a recovery code, which is
    then used up), or None. django-otp slows down guessing: after a wrong code the next one is
    refused for 1, 2, 4... seconds."""
    code = _normalize(code)
    model = AuthenticatorDevice if code.isdigit() else RecoveryCodeDevice
    device = model.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return None
    return django_otp.verify_token(user, device.persistent_id, code)


def disable(user):
    AuthenticatorDevice.objects.filter(user=user).delete()
    RecoveryCodeDevice.objects.filter(user=user).delete()


def _normalize(code):
    # People copy codes with spaces ("123 456") and read recovery codes aloud in capitals.
    return "".join(code.split()).lower()


def _follow_moved_device(session):
    # Before django-otp's OTPMiddleware reads the session (request.user is lazy): it would
    # drop an id naming a row that is gone, and the user would be logged out.
    label, _slash, pk = session.get(DEVICE_ID_SESSION_KEY, "").rpartition("/")
    if label in MOVED_DEVICES:
        session[DEVICE_ID_SESSION_KEY] = f"{MOVED_DEVICES[label]}/{pk}"


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
        _follow_moved_device(request.session)
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
