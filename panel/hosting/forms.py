"""The site form. Validation lives in panel.hosting.sites; the form only shapes the input."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from certs import site_removal
from panel.hosting import sites
from panel.security import homes
from panel.toolkit import access, validation

# One per line, or separated by commas or spaces; full-width commas are common in Chinese text.
_DOMAIN_SEPARATORS = re.compile(r"[\s,，、]+")


def split_domains(text):
    return [name for name in _DOMAIN_SEPARATORS.split(text or "") if name]


class SiteForm(forms.Form):
    domains = forms.CharField(
        label=_("Domains"),
        required=False,  # panel.hosting.sites says what is missing, in the same words as the API
        widget=forms.Textarea(attrs={"rows": 4, "autocapitalize": "none", "spellcheck": "false",
                                     "placeholder": "example.com\nwww.example.com"}),
        help_text=_("One per line, or separated by commas or spaces. The first is the primary name."),
    )
    root = forms.CharField(
        label=_("Document root"), required=False,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false"}),
        help_text=_("For a static site: an absolute directory path."),
    )
    # Administrators only, shown once a root needs it (panel.security.homes.check_document_root).
    confirm_system_root = forms.BooleanField(
        label=homes.CONFIRM_SYSTEM_ROOT_LABEL, required=False,
        help_text=_("nginx serves every file in it to anyone. System directories (/etc, "
                    "/proc…) and the panel's own data are refused all the same."),
    )
    proxy_pass = forms.CharField(
        label=_("Reverse-proxy upstream"), required=False,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false",
                                      "placeholder": "http://127.0.0.1:3000"}),
        help_text=_("For a proxied application: the URL nginx passes requests to. Fill in this or the "
                    "document root, not both."),
    )
    force_https = forms.BooleanField(label=_("Redirect HTTP to HTTPS"), required=False)
    hsts = forms.BooleanField(label=_("HSTS (tell browsers to use HTTPS only)"), required=False)
    http2 = forms.BooleanField(label=_("HTTP/2"), required=False, initial=True)

    def __init__(self, *args, site=None, user=None, **kwargs):
        """`site`: the stored site being edited; its own names do not count as taken.
        `user`: who fills in the form; an admin's document root may lie outside the allowed roots."""
        if site is not None:
            kwargs.setdefault("initial", {
                "domains": "\n".join(map(validation.unicode_domain, site.domains)),
                "root": site.root, "proxy_pass": site.proxy_pass,
                "force_https": site.force_https, "hsts": site.hsts, "http2": site.http2,
            })
        super().__init__(*args, **kwargs)
        self.site_pk = site.pk if site is not None else None
        self.user = user
        self.owner = site.owner if site is not None else user
        if user is None or not access.is_admin(user):
            del self.fields["confirm_system_root"]
        self.asks_confirmation = "confirm_system_root" in self.fields and bool(
            self.data.get("confirm_system_root"))
        if user is not None:
            home = homes.home_of(self.owner)
            # static/js/site_form.js proposes <home>/<first domain> as the domains are typed.
            self.fields["domains"].widget.attrs["data-proposes-root"] = ""
            self.fields["root"].widget.attrs.update({"data-root-home": str(home),
                                                     "placeholder": self._proposed_root(home)})
            if access.is_admin(user):
                help_text = _("For a static site: an absolute directory path; as an "
                              "administrator you may use any directory but the system's own and "
                              "the panel's data, one outside the homes and web directories after "
                              "a confirmation. Left empty with no upstream: "
                              "%(home)s/<first domain>/, created with a start page.")
            else:
                help_text = _("For a static site: a directory inside your home %(home)s or a directory an "
                              "administrator granted you. Left empty with no upstream: %(home)s/<first domain>/, "
                              "created with a start page.")
            self.fields["root"].help_text = help_text % {"home": home}

    def _proposed_root(self, home):
        """The root a site by these domains alone gets, or the home until a domain is typed."""
        typed = self.data.get("domains") if self.is_bound else self.initial.get("domains")
        names = split_domains(typed)
        try:
            return homes.default_document_root(self.owner, validation.normalize_domain(names[0]))
        except (IndexError, ValidationError):
            return f"{home}/"

    def clean(self):
        data = super().clean()
        try:
            data["domains"], data["root"], data["proxy_pass"] = sites.clean_site_fields(
                split_domains(data.get("domains")), data.get("root"), data.get("proxy_pass"),
                exclude_pk=self.site_pk, actor=self.user, owner=self.owner,
                # Not a field of the site: taken out before the view makes one of the data.
                confirm_system_root=data.pop("confirm_system_root", False),
            )
        except ValidationError as exc:
            self.add_error(None, exc)  # a dict keyed by field: each message lands on its field
            self.asks_confirmation |= self.has_error("root", code="confirm_system_root")
        return data


class SiteDeleteForm(forms.Form):
    """What becomes of the certificates only this site uses (certs.site_removal); left out: kept."""

    certificates = forms.ChoiceField(
        label=_("What becomes of them"), required=False, widget=forms.RadioSelect,
        choices=site_removal.CertificatesChoice.choices, initial=site_removal.KEEP)


class PanelDomainForm(forms.Form):
    """The panel's own domain (panel.hosting.panel_domain checks it)."""

    domain = forms.CharField(
        label=_("The panel's domain"), max_length=253,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "spellcheck": "false",
                                      "placeholder": "panel.example.com"}),
        help_text=_("A name whose DNS points at this server, served by no site. The panel gets a certificate "
                    "for it from the default certificate authority, validated on the HTTP port, and renews it "
                    "like any other."),
    )
