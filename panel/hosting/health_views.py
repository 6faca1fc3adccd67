"""/healthz: for load balancers and monitors, no login."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from panel.hosting import health


@never_cache
@require_safe
def healthz(request):
    """200 when every check passes, else 503; the body says which did not."""
    checks = health.run_checks()
    ok = all(result == "ok" for result in checks.values())
    return JsonResponse({"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503)
