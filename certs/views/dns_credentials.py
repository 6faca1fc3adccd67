"""DNS credential pages. Their values are never rendered: pages show only which fields are set."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from certs import dns_credentials
from certs.dns import registry
from certs.dns_credentials import provider_label
from certs.forms.dns_credentials import DnsCredentialForm, DnsProviderChoiceForm
from certs.models import DnsCredential
from panel.toolkit import access
from panel.toolkit.deletion import InUse, delete_unless_in_use
from panel.toolkit.navigation import local_path

# An admin sees every user's credentials: a hosting provider's can run into thousands.
DNS_CREDENTIALS_PER_PAGE = 50


def _catalog_entry(code):
    return next((entry for entry in registry.catalog() if entry["code"] == code), None)


@login_required
def dns_credential_list(request):
    rows = (
        access.scoped(DnsCredential, request.user)
        .defer("credentials")  # secrets: not even decrypted for this page
        .annotate(certificate_count=Count("certificates"))
        .order_by("name", "id")  # an aggregate drops Meta.ordering
    )
    page = Paginator(rows, DNS_CREDENTIALS_PER_PAGE).get_page(request.GET.get("page"))
    for credential in page:
        credential.provider_label = provider_label(credential.provider)
    return render(request, "certs/dns_credential_list.html", {"nav": "dns", "page": page})


@login_required
def dns_credential_add(request):
    """Step one (GET, no provider): choose the provider. Step two (?provider=code, then POST):
    that provider's fields. Then back to `next`, the page that sent the user here, if it is on
    this panel."""
    sent = request.POST if request.method == "POST" else request.GET
    code, back_to = sent.get("provider", ""), local_path(sent.get("next"))
    chooser = DnsProviderChoiceForm({"provider": code} if code else None, user=request.user)
    if not chooser.is_valid():
        return render(request, "certs/dns_credential_provider.html",
                      {"nav": "dns", "form": chooser, "next": back_to})
    provider = _catalog_entry(chooser.cleaned_data["provider"])
    form = DnsCredentialForm(provider, request.POST if request.method == "POST" else None, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        credential = dns_credentials.save_credential(
            DnsCredential(owner=request.user), provider["code"], data["name"], data["credentials"],
            data["propagation_timeout"],
        )
        messages.success(request, _("DNS credentials “%(name)s” saved.") % {"name": credential.name})
        if back_to:
            return redirect(back_to)
        return redirect("ui:dns-credential-detail", pk=credential.pk)
    return render(request, "certs/dns_credential_form.html",
                  {"nav": "dns", "form": form, "provider": provider, "next": back_to})


@login_required
def dns_credential_edit(request, pk):
    """The provider stays; a secret field left empty keeps its stored secret."""
    credential = access.get_owned(DnsCredential, request.user, pk=pk)
    provider = _catalog_entry(credential.provider)
    if provider is None:
        raise Http404("provider no longer registered")
    form = DnsCredentialForm(provider, request.POST if request.method == "POST" else None, user=request.user,
                             credential=credential)
    if form.is_valid():
        data = form.cleaned_data
        dns_credentials.update_credential(credential, data["name"], data["credentials"], data["propagation_timeout"])
        messages.success(request, _("DNS credentials “%(name)s” saved.") % {"name": credential.name})
        return redirect("ui:dns-credential-detail", pk=credential.pk)
    return render(request, "certs/dns_credential_form.html",
                  {"nav": "dns", "form": form, "provider": provider, "credential": credential})


@login_required
def dns_credential_detail(request, pk):
    credential = access.get_owned(DnsCredential, request.user, pk=pk)
    stored = set(credential.values())
    entry = _catalog_entry(credential.provider)
    fields = [{"label": spec["label"], "sensitive": spec["sensitive"], "is_set": spec["name"] in stored}
              for spec in (entry["fields"] if entry else [])]
    return render(request, "certs/dns_credential_detail.html", {
        "nav": "dns",
        "credential": credential,
        "provider_label": provider_label(credential.provider),
        "fields": fields,
        "certificates": credential.certificates.select_related("site").order_by("id"),
    })


@login_required
@require_POST
def dns_credential_test(request, pk):
    credential = access.get_owned(DnsCredential, request.user, pk=pk)
    ok, message = dns_credentials.test_credential(credential)
    if ok:
        messages.success(request, _("“%(name)s”: %(message)s") % {"name": credential.name, "message": message})
    else:
        messages.error(request, _("“%(name)s” did not work: %(message)s") % {"name": credential.name,
                                                                             "message": message})
    if request.POST.get("back") == "list":
        return redirect("ui:dns-credential-list")
    return redirect("ui:dns-credential-detail", pk=credential.pk)


@login_required
def dns_credential_delete(request, pk):
    """GET asks for confirmation; POST deletes, unless certificates still use the credentials."""
    credential = access.get_owned(DnsCredential, request.user, pk=pk)
    if request.method != "POST":
        return render(request, "certs/dns_credential_delete.html",
                      {"nav": "dns", "credential": credential, "in_use": credential.certificates.count()})
    try:
        delete_unless_in_use(credential, credential.certificates)
    except InUse as exc:
        messages.error(request, ngettext(
            "“%(name)s” cannot be deleted: %(count)d certificate uses it.",
            "“%(name)s” cannot be deleted: %(count)d certificates use it.", exc.count,
        ) % {"name": credential.name, "count": exc.count})
        return redirect("ui:dns-credential-detail", pk=credential.pk)
    messages.success(request, _("DNS credentials “%(name)s” deleted.") % {"name": credential.name})
    return redirect("ui:dns-credential-list")
