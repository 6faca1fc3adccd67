"""The form for a notification channel; certs.notifications checks its URL."""

from django import forms
from django.utils.translation import gettext_lazy as _

from certs import notifications
from certs.models import NotificationEvent
from panel.toolkit import access


class NotificationChannelForm(forms.Form):
    """A channel: a name, an apprise URL (it holds tokens: a password input that never renders a
    value back) and the events to send."""

    name = forms.CharField(label=_("Name"), max_length=200)
    url = forms.CharField(
        label=_("Apprise URL"), max_length=2048,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Any apprise URL: json://, mailto://, tgram://, slack://, dingtalk://, wecom://, feishu://… "
                    "or django-mail://you@example.com for the panel's own mail settings. It holds tokens: "
                    "stored encrypted, never shown again."),
    )
    events = forms.MultipleChoiceField(label=_("Send"), choices=NotificationEvent.choices,
                                       initial=NotificationEvent.values, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, user=None, **kwargs):
        """user: who adds the channel; only an admin may send into the server's own network."""
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_url(self):
        return notifications.clean_url(self.cleaned_data["url"],
                                       allow_internal=self.user is not None and access.is_admin(self.user))

    def clean_events(self):
        chosen = self.cleaned_data["events"]
        return [event for event in NotificationEvent.values if event in chosen]
