"""API tokens: per user, named, read or read-write, optionally expiring, revocable.

The key is shown once, when it is made; the database keeps only its SHA-256 (a 256-bit
random key needs no slow hash) and a short prefix that lets a person tell tokens apart.
A database dump therefore holds no usable token.

    Authorization: Token <key>     (or: Authorization: Bearer <key>)
"""

import datetime
import hashlib
import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from panel.models import ApiToken, Scope
from panel.toolkit import access

KEY_PREFIX = "cp_"
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 6
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def own_tokens(user):
    """A token is a personal credential: everyone, an admin too, lists and revokes only their own."""
    return access.scoped(ApiToken, user).filter(owner_id=user.pk)


def hash_key(key):
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(owner, name, scope=Scope.READ_WRITE, expires_in_days=None):
    """(token, key): a new token and its key, which is never available again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + datetime.timedelta(days=expires_in_days) if expires_in_days else None
    token = ApiToken.objects.create(owner=owner, name=name, key_hash=hash_key(key),
                                    prefix=key[:SHOWN_PREFIX_LENGTH], scope=scope, expires_at=expires_at)
    return token, key


def revoke_token(token):
    """Revoke at once; the first revocation's time stands. True if this call revoked it."""
    now = timezone.now()
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    token.refresh_from_db(fields=["revoked_at"])
    return bool(revoked)


class TokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` or `Bearer <key>`. An unknown, revoked or expired key is
    refused with a 401 that says which, never silently treated as anonymous."""

    keywords = ("token", "bearer")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Give the token as `Authorization: Token <key>`."))
        try:
            key = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token = ApiToken.objects.select_related("owner").filter(key_hash=hash_key(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This token was revoked."))
        if token.is_expired:
            raise exceptions.AuthenticationFailed(
                _("This token expired on %(at)s.") % {"at": f"{token.expires_at:%Y-%m-%d %H:%M} UTC"})
        if not token.owner.is_active:
            raise exceptions.AuthenticationFailed(_("This token's user is disabled."))
        _note_use(token)
        # The audit log (panel.security.audit) reads it from the Django request, after the response.
        request._request.api_token = token
        return token.owner, token

    def authenticate_header(self, request):
        return "Token"  # makes a refusal a 401 with WWW-Authenticate, not a 403


def _note_use(token):
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).filter(
        models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)


class TokenScope(permissions.BasePermission):
    """A read-only token may read, nothing more."""

    message = gettext_lazy("This API token is read-only.")

    def has_permission(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and token.scope != Scope.READ_WRITE:
            return request.method in permissions.SAFE_METHODS
        return True


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes TokenAuthentication."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>` or `Bearer <key>`; make a key under API tokens"}
