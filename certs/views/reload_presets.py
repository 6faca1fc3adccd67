"""Admin-only pages: reload presets, the commands users may pick for their install targets.
Thin: access -> form (ReloadPreset.clean has the rules) -> save -> redirect."""

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from certs.forms.reload_presets import ReloadPresetForm
from certs.models import ReloadPreset
from panel.toolkit.access import admin_required
from panel.toolkit.deletion import InUse, delete_unless_in_use


@admin_required
def reload_preset_list(request):
    presets = ReloadPreset.objects.select_related("owner").annotate(target_count=Count("install_targets"))
    return render(request, "certs/reload_preset_list.html", {"nav": "reload-presets", "presets": presets})


@admin_required
def reload_preset_form(request, pk=None):
    """Add (no pk) or edit a preset."""
    preset = get_object_or_404(ReloadPreset, pk=pk) if pk else ReloadPreset(owner=request.user)
    form = ReloadPresetForm(request.POST if request.method == "POST" else None, instance=preset)
    if form.is_valid():
        preset = form.save()
        messages.success(request, _("Reload preset “%(name)s” saved.") % {"name": preset.name})
        return redirect("ui:reload-preset-list")
    return render(request, "certs/reload_preset_form.html", {"nav": "reload-presets", "form": form,
                                                             "preset": preset if pk else None})


@admin_required
def reload_preset_delete(request, pk):
    """GET asks for confirmation; POST deletes, unless install targets still use the preset."""
    preset = get_object_or_404(ReloadPreset, pk=pk)
    if request.method != "POST":
        return render(request, "certs/reload_preset_delete.html",
                      {"nav": "reload-presets", "preset": preset, "in_use": preset.install_targets.count()})
    try:
        delete_unless_in_use(preset, preset.install_targets)
    except InUse as exc:
        messages.error(request, ngettext(
            "“%(name)s” cannot be deleted: %(count)d install target uses it.",
            "“%(name)s” cannot be deleted: %(count)d install targets use it.", exc.count,
        ) % {"name": preset.name, "count": exc.count})
    else:
        messages.success(request, _("Reload preset “%(name)s” deleted.") % {"name": preset.name})
    return redirect("ui:reload-preset-list")
