"""Response headers that limit what a page can load, embed or leak.

The policy allows nothing inline: every script and style is a file under static/,
so an injected <script>, on*= handler or style= attribute does nothing. htmx is
configured in base.html to need neither eval nor injected styles.
"""

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",  # data: for images the panel generates inline, such as a TOTP QR code
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
])


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy; Referrer-Policy, X-Content-Type-Options and
    X-Frame-Options come from Django's own middleware (see settings)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
