"""Admin-only page: import an uploaded acme.sh home or certbot config dir, previewed first.
Thin: access -> form -> certs.importers.archive -> the report on the page."""

from django.shortcuts import render

from certs.forms.imports import ImportForm
from certs.importers.archive import ArchiveError, import_archive
from panel.toolkit.access import admin_required


@admin_required
def import_page(request):
    """POST with action=preview (a dry run) or action=import; the report is shown either way."""
    form = ImportForm(request.POST or None, request.FILES or None, initial={"owner": request.user})
    report = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            report = import_archive(data["archive"], data["client"], data["owner"],
                                    dry_run=request.POST.get("action") != "import")
        except ArchiveError as exc:
            form.add_error("archive", str(exc))
    return render(request, "certs/import.html", {"nav": "import", "form": form, "report": report})
