from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.templatetags.static import static
from django.urls import include, path
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from certs.api.acme_accounts import AcmeAccountViewSet
from certs.api.certificates import CertificateViewSet
from certs.api.dns_credentials import DnsCredentialViewSet
from certs.api.dns_providers import DnsProviderViewSet
from certs.api.install_targets import InstallTargetViewSet
from certs.api.notification_channels import NotificationChannelViewSet
from certs.api.reload_presets import ReloadPresetViewSet
from certs.api.versions import CertificateVersionDownload, CertificateVersionList, CertificateVersionRevoke
from panel.hosting import health_views
from panel.hosting.api import SiteViewSet
from panel.security import login_views
from panel.security.api import ApiTokenViewSet


# No ".json" suffix routes: they are not in the published schema, and DRF passes their
# `format` kwarg to every custom action, which would have to accept it or answer 500.
class ApiRouter(DefaultRouter):
    include_format_suffixes = False


router = ApiRouter()
router.register("sites", SiteViewSet, basename="site")
router.register("acme-accounts", AcmeAccountViewSet, basename="acme-account")
router.register("certificates", CertificateViewSet, basename="certificate")
router.register("dns-credentials", DnsCredentialViewSet, basename="dns-credential")
router.register("dns-providers", DnsProviderViewSet, basename="dns-provider")
router.register("install-targets", InstallTargetViewSet, basename="install-target")
router.register("reload-presets", ReloadPresetViewSet, basename="reload-preset")
router.register("notification-channels", NotificationChannelViewSet, basename="notification-channel")
router.register("tokens", ApiTokenViewSet, basename="api-token")

urlpatterns = [
    path("api/v1/", include(router.urls)),
    path("api/v1/certificates/<int:pk>/versions/", CertificateVersionList.as_view(), name="certificate-versions"),
    path("api/v1/certificate-versions/<int:pk>/download/", CertificateVersionDownload.as_view(),
         name="certificate-version-download"),
    path("api/v1/certificate-versions/<int:pk>/revoke/", CertificateVersionRevoke.as_view(),
         name="certificate-version-revoke"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("healthz", health_views.healthz, name="healthz"),
    path("login/", login_views.PasswordStepView.as_view(), name="login"),
    path("login/code/", login_views.second_step, name="login-verify"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)),
    path("", include("panel.ui_urls")),
]


def not_found(request, exception):
    """A path no URL pattern takes (e.g. /api/v1/sites/abc/): JSON for the API, as its
    schema promises, the HTML page for people."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found
