"""The form for a reload preset (admins only); ReloadPreset.clean has the rules."""

from django import forms
from django.utils.translation import gettext_lazy as _

from certs.models import ReloadPreset


class CommandWordsField(forms.CharField):
    """An argv list entered one word per line: a word may hold spaces, and nothing is shell syntax."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocapitalize": "none",
                                   "placeholder": "/usr/bin/systemctl\nreload\nnginx"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class ReloadPresetForm(forms.ModelForm):
    """ReloadPreset.clean has the rules: an absolute program path, a timeout in range."""

    command = CommandWordsField(label=_("Command"), help_text=_("One word per line: the program by its absolute "
                                                                "path, then each argument. No shell is involved."))

    class Meta:
        model = ReloadPreset
        fields = ["name", "command", "timeout_seconds", "approved", "shared"]
        labels = {"name": _("Name"), "timeout_seconds": _("Timeout (seconds)"), "approved": _("Approved to run"),
                  "shared": _("Offer to every user")}
        help_texts = {
            "approved": _("A command a user's import brought runs only once you approve it: it runs on this server "
                          "as the panel's user."),
            "shared": _("Every user may pick it for their install targets. Otherwise only its owner may."),
        }
