"""Notification channel pages. The URL holds tokens: pages show only its scheme, never the rest."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from certs import notifications
from certs.forms.notifications import NotificationChannelForm
from certs.models import NotificationChannel, NotificationEvent
from panel.toolkit import access


@login_required
def notification_list(request):
    channels = access.scoped(NotificationChannel, request.user).order_by("name", "id")
    labels = dict(NotificationEvent.choices)
    for channel in channels:
        channel.redacted_url = notifications.redacted_url(channel.url)
        channel.event_labels = [labels[event] for event in channel.events if event in labels]
    return render(request, "certs/notification_list.html", {"nav": "notifications", "channels": channels})


@login_required
def notification_add(request):
    form = NotificationChannelForm(request.POST if request.method == "POST" else None, user=request.user)
    if form.is_valid():
        channel = NotificationChannel.objects.create(owner=request.user, **form.cleaned_data)
        messages.success(request, _("Notification channel “%(name)s” added. Send a test to check that it "
                                    "works.") % {"name": channel.name})
        return redirect("ui:notification-list")
    return render(request, "certs/notification_form.html", {"nav": "notifications", "form": form})


@login_required
@require_POST
def notification_test(request, pk):
    channel = access.get_owned(NotificationChannel, request.user, pk=pk)
    ok, message = notifications.send_test(channel)
    if ok:
        messages.success(request, _("Test message sent to “%(name)s”.") % {"name": channel.name})
    else:
        messages.error(request, _("“%(name)s” did not work: %(message)s") % {"name": channel.name,
                                                                             "message": message})
    return redirect("ui:notification-list")


@login_required
def notification_delete(request, pk):
    """GET asks for confirmation; POST deletes."""
    channel = access.get_owned(NotificationChannel, request.user, pk=pk)
    if request.method == "POST":
        channel.delete()
        messages.success(request, _("Notification channel “%(name)s” deleted.") % {"name": channel.name})
        return redirect("ui:notification-list")
    return render(request, "certs/notification_delete.html", {"nav": "notifications", "channel": channel})
