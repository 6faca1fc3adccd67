"""API token pages: the user's own tokens, under the user menu."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from panel.security import audit, tokens
from panel.security.forms import ApiTokenForm


@login_required
def token_list(request):
    """The user's tokens and a form for a new one. The new key is shown in the answer to the
    POST that made it and never again: it is not stored anywhere it could be shown from."""
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    new_token = new_key = None
    if form.is_valid():
        data = form.cleaned_data
        new_token, new_key = tokens.issue_token(request.user, data["name"], data["scope"], data["expires_in_days"])
        form = ApiTokenForm()
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
