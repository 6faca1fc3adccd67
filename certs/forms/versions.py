"""The form for revoking a certificate version at the CA."""

from django import forms
from django.utils.translation import gettext_lazy as _

from certs import versions


class RevokeForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=versions.RevocationReason.choices,
                               initial=versions.RevocationReason.UNSPECIFIED, widget=forms.RadioSelect)
