"""The browser UI. Namespaced "ui": the REST router already owns names like "site-list"."""

from django.urls import include, path
from django.views.generic import RedirectView

from panel.hosting import dashboard_views, panel_https_views, site_views
from panel.security import account_views, audit_views, token_views, user_views

app_name = "ui"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="ui:dashboard"), name="home"),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("sites/", site_views.site_list, name="site-list"),
    path("sites/add/", site_views.site_add, name="site-add"),
    path("sites/<int:pk>/", site_views.site_detail, name="site-detail"),
    path("sites/<int:pk>/edit/", site_views.site_edit, name="site-edit"),
    path("sites/<int:pk>/delete/", site_views.site_delete, name="site-delete"),
    path("sites/<int:pk>/force-https/", site_views.site_force_https, name="site-force-https"),
    path("sites/<int:pk>/config-status/", site_views.site_config_status, name="site-config-status"),
    path("sites/<int:pk>/nginx-config/", site_views.site_config_preview, name="site-config-preview"),
    path("security/", account_views.security, name="security"),
    path("security/two-factor/enable/", account_views.two_factor_enable, name="two-factor-enable"),
    path("security/two-factor/disable/", account_views.two_factor_disable, name="two-factor-disable"),
    path("security/recovery-codes/", account_views.recovery_codes, name="recovery-codes"),
    path("security/password/", account_views.PasswordChangeView.as_view(), name="password-change"),
    path("settings/", account_views.panel_settings, name="settings"),
    path("settings/panel-https/", panel_https_views.panel_https, name="panel-https"),
    path("settings/panel-https/clear/", panel_https_views.panel_https_clear, name="panel-https-clear"),
    path("tokens/", token_views.token_list, name="token-list"),
    path("tokens/<int:pk>/revoke/", token_views.token_revoke, name="token-revoke"),
    path("audit/", audit_views.audit_log, name="audit-log"),
    path("users/", user_views.user_list, name="user-list"),
    path("users/add/", user_views.user_add, name="user-add"),
    path("users/<int:pk>/", user_views.user_edit, name="user-edit"),
    path("", include("certs.ui_urls")),
]
