"""API token pages: the user's own tokens, under the user menu."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from panel.security import audit, tokens
from panel.security.forms import ApiTokenForm
from panel.toolkit import encryption


# The session key under which a new token's key waits for the one page that shows it.
NEW_KEY_SESSION_KEY = "new_api_token"


@login_required
def token_list(request):
    """The user's tokens and a form for a new one. A POST makes the token and redirects, so a
    reload cannot make a second one; the key waits in the session (encrypted: sessions are
    stored rows) for the GET that follows, which shows it once and removes it."""
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        token, key = tokens.issue_token(request.user, data["name"], data["scope"], data["expires_in_days"])
        request.session[NEW_KEY_SESSION_KEY] = {"id": token.pk, "key": encryption.encrypt(key)}
        return redirect("ui:token-list")
    new_token = new_key = None
    waiting = request.session.pop(NEW_KEY_SESSION_KEY, None) if request.method == "GET" else None
    if waiting:
        new_token = tokens.own_tokens(request.user).filter(pk=waiting["id"]).first()
        new_key = encryption.decrypt(waiting["key"]) if new_token else None
    response = render(request, "panel/token_list.html", {
        "nav": "tokens", "form": form, "tokens": tokens.own_tokens(request.user),
        "new_token": new_token, "new_key": new_key,
    })
    add_never_cache_headers(response)
    return response


@login_required
def token_revoke(request, pk):
    """GET asks for confirmation; POST revokes."""
    token = get_object_or_404(tokens.own_tokens(request.user), pk=pk)
    if request.method == "POST":
        if tokens.revoke_token(token):
            audit.record(request, audit.Action.REVOKE, token)
        messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
        return redirect("ui:token-list")
    return render(request, "panel/token_revoke.html", {"nav": "tokens", "token": token})
