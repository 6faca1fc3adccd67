"""The BT-style "security entrance" (settings.SECURITY_ENTRANCE): a secret first path segment.

When it is set, an anonymous visitor gets a bare 404 for every page, the login page included,
until they have come through /<entrance>/ in this browser session; that marks the session and
sends them on to the login page. A scanner that finds the panel's port finds no login form to
try passwords on, and nothing that says a panel is there.

Not behind the entrance: signed-in users; the API with a token (scripts send it in the
Authorization header; the API's own authentication decides); /healthz; static files; HTTP-01
challenge paths.
"""

from django.conf import settings
from django.http import HttpResponseNotFound
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare

SESSION_KEY = "certpanel-entrance"
OPEN_PREFIXES = ("/healthz", "/.well-known/acme-challenge/")
# As plain as nginx's own: nothing in it tells a panel is here.
NOT_FOUND = "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n"


def _is_open(request):
    path = request.path
    if path.startswith(OPEN_PREFIXES) or path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return True
    return path.startswith("/api/") and bool(request.META.get("HTTP_AUTHORIZATION"))


def _entrance_of(path):
    """The secret segment `path` names (/<segment> or /<segment>/), or None."""
    segment = path.strip("/")
    return segment if segment and "/" not in segment and path.startswith("/") else None


class SecurityEntranceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        entrance = settings.SECURITY_ENTRANCE
        if not entrance:
            return self.get_response(request)
        named = _entrance_of(request.path)
        if named is not None and constant_time_compare(named, entrance):
            request.session[SESSION_KEY] = True
            return redirect(reverse("login"))
        passed = bool(request.session.get(SESSION_KEY))
        if not (passed or request.user.is_authenticated or _is_open(request)):
            return HttpResponseNotFound(NOT_FOUND)
        response = self.get_response(request)
        if passed and not request.session.get(SESSION_KEY):
            # Logging out flushed the session: the visitor came through the entrance, and is
            # sent to the login page, which must not answer 404 now.
            request.session[SESSION_KEY] = True
        return response
