"""ACME account pages: the list and registering a new account at a CA."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from certs import accounts, cas, problems
from certs.acme import AcmeError
from certs.forms.acme_accounts import AcmeAccountForm
from certs.models import AcmeAccount
from panel.toolkit import access
from panel.toolkit.navigation import local_path

# An admin sees every user's accounts: a hosting provider's can run into thousands.
ACCOUNTS_PER_PAGE = 50


@login_required
def account_list(request):
    account_rows = (
        access.scoped(AcmeAccount, request.user)
        .defer("account_key", "eab_hmac_key")  # secrets: not even decrypted for this page
        .annotate(certificate_count=Count("certificates"))
        .order_by("id")  # an aggregate drops Meta.ordering
    )
    page = Paginator(account_rows, ACCOUNTS_PER_PAGE).get_page(request.GET.get("page"))
    for account in page:
        account.preset = cas.preset_for_url(account.directory_url)
    return render(request, "certs/account_list.html", {"nav": "accounts", "page": page})


@login_required
def account_add(request):
    """Register an account; then back to `next`, the page that sent the user here, if it is
    on this panel."""
    back_to = local_path(request.POST.get("next") or request.GET.get("next"))
    form = AcmeAccountForm(request.user, request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        try:
            accounts.register_account(request.user, data["directory_url"], email=data["email"],
                                      eab_kid=data["eab_kid"], eab_hmac_key=data["eab_hmac_key"])
        except AcmeError as exc:
            failure = problems.from_acme(exc, data["directory_url"])
            form.add_error(None, failure.html(_("The account was not registered.")))
        else:
            messages.success(request, _("ACME account registered."))
            return redirect(back_to or "ui:account-list")
    return render(request, "certs/account_form.html",
                  {"nav": "accounts", "form": form, "next": back_to})
