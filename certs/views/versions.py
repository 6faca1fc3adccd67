"""Certificate version pages: the history fragment, downloads and revocation.
The private key leaves only as an attachment, only for its owner, only for a POST (CSRF)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from certs import problems, versions
from certs.acme import AcmeError
from certs.forms.versions import RevokeForm
from certs.presentation import certificate_page_context, described_versions, owned_certificate
from panel.security import audit

VERSIONS_ON_SITE_PAGE = 10


@login_required
def certificate_history(request, pk):
    """The version history fragment the site page loads: the newest versions and a link to all."""
    certificate = owned_certificate(request, pk)
    rows = list(versions.history(certificate)[:VERSIONS_ON_SITE_PAGE + 1])
    return render(request, "certs/_version_history.html", {
        "certificate": certificate,
        "versions": described_versions(rows[:VERSIONS_ON_SITE_PAGE], certificate),
        "more_versions": len(rows) > VERSIONS_ON_SITE_PAGE,
    })


@login_required
def version_download(request, pk, fmt):
    """cert and fullchain: a plain link. pem-key and pfx: a POST from a form, owner only."""
    if fmt not in versions.ExportFormat.values:
        raise Http404
    secret = fmt in versions.SECRET_FORMATS
    if request.method != "POST" and (secret or request.method not in ("GET", "HEAD")):
        return HttpResponseNotAllowed(["POST"] if secret else ["GET", "HEAD", "POST"])
    version = versions.get_version(request.user, pk, secret=secret)
    try:
        exported = versions.export(version, fmt, password=request.POST.get("password", ""))
    except versions.ExportRefused as exc:
        certificate = owned_certificate(request, version.certificate_id)
        return render(request, "certs/certificate_detail.html",
                      certificate_page_context(request, certificate, export_error=str(exc)), status=400)
    if secret:
        audit.record(request, audit.Action.KEY_DOWNLOAD, version, format=fmt)
    return versions.as_attachment(exported)


@login_required
def version_revoke(request, pk):
    """GET asks which reason, and for confirmation; POST revokes at the CA."""
    version = versions.get_version(request.user, pk)
    certificate = owned_certificate(request, version.certificate_id)
    versions.describe(version, certificate)
    if version.revoked_at:
        messages.warning(request, _("This certificate was already revoked."))
        return redirect("ui:certificate-detail", pk=certificate.pk)
    form = RevokeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            versions.revoke(version, form.cleaned_data["reason"])
        except versions.RevocationRefused as exc:
            messages.warning(request, str(exc))
            return redirect("ui:certificate-detail", pk=certificate.pk)
        except AcmeError as exc:
            failure = problems.from_acme(exc, certificate.account.directory_url)
            form.add_error(None, failure.html(_("The CA did not revoke it.")))
        else:
            audit.record_revocations(request, [version])
            if version.is_current:
                messages.success(request, _("Certificate revoked. Re-issue it so the site gets a valid one."))
            else:
                messages.success(request, _("Certificate revoked."))
            return redirect("ui:certificate-detail", pk=certificate.pk)
    return render(request, "certs/version_revoke.html",
                  {"nav": "certificates", "version": version, "certificate": certificate, "form": form})
