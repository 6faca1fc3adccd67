"""The form for an import from other ACME clients (admins only)."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from certs import importers
from certs.importers import archive as archive_import


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.get_username()


class ImportForm(forms.Form):
    """An archive of an acme.sh home or a certbot config dir; certs.importers.archive does the rest."""

    archive = forms.FileField(label=_("Archive"), help_text=_(
        ".tar.gz, .tgz, .tar or .zip of an acme.sh home (e.g. ~/.acme.sh) or a certbot config dir (e.g. "
        "/etc/letsencrypt); its top folder may be that directory or hold it."))
    client = forms.ChoiceField(label=_("Made by"), required=False, choices=[
        ("", _("Detect from the files")), (importers.ACMESH, "acme.sh"), (importers.CERTBOT, "certbot")])
    owner = UserChoiceField(label=_("Owner"), queryset=get_user_model().objects.none(), help_text=_(
        "Who owns the imported certificates, accounts and DNS credentials."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = get_user_model().objects.filter(is_active=True).order_by("username")

    def clean_archive(self):
        archive = self.cleaned_data["archive"]
        if not archive.name.lower().endswith(archive_import.SUFFIXES):
            raise ValidationError(_("Upload a .tar.gz, .tgz, .tar or .zip file."))
        return archive
