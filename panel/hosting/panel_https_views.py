"""The panel's own HTTPS: its port, its domain and the certificate it is served with (admins)."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from certs import accounts, problems
from certs.acme import AcmeError
from panel.hosting import panel_domain
from panel.hosting.forms import PanelDomainForm
from panel.toolkit.access import admin_required


@admin_required
def panel_https(request):
    row = panel_domain.current()
    form = PanelDomainForm(request.POST or None, initial={"domain": row.domain})
    if request.method == "POST" and form.is_valid():
        try:
            row = panel_domain.set_domain(form.cleaned_data["domain"], request.user, request)
        except ValidationError as exc:
            form.add_error("domain", exc)
        except AcmeError as exc:
            failure = problems.from_acme(exc, accounts.default_ca().directory_url)
            form.add_error(None, failure.html(_("The account was not registered.")))
        else:
            messages.success(request, _("The panel's domain is %(name)s. Its certificate is being ordered; once "
                                        "issued, nginx serves the panel with it.") % {"name": row.domain})
            return redirect("ui:panel-https")
    return render(request, "panel/panel_https.html", {
        "nav": "panel-https", "form": form, "row": row, "version": row.serving_version(),
        "panel_port": settings.PANEL_PORT, "entrance_on": bool(settings.SECURITY_ENTRANCE),
    })


@admin_required
@require_POST
def panel_https_clear(request):
    panel_domain.clear_domain(request)
    messages.success(request, _("The panel has no domain any more: nginx serves it with its self-signed "
                                "certificate. The domain's certificate is no longer renewed."))
    return redirect("ui:panel-https")
