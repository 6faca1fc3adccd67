"""Certificate pages; included by panel.ui_urls, so the names live in the "ui" namespace."""

from django.urls import path

from certs import import_views, reload_preset_views, views

urlpatterns = [
    path("sites/<int:site_pk>/certificates/", views.issue_certificate, name="certificate-issue"),
    path("certificates/", views.certificate_list, name="certificate-list"),
    path("certificates/issue-external/", views.certificate_issue_external, name="certificate-issue-external"),
    path("certificates/upload/", views.certificate_upload, name="certificate-upload"),
    path("certificates/<int:pk>/renew/", views.renew_certificate, name="certificate-renew"),
    path("orders/<int:pk>/status/", views.order_status, name="order-status"),
    path("orders/<int:pk>/continue/", views.order_continue, name="order-continue"),
    path("acme-accounts/", views.account_list, name="account-list"),
    path("acme-accounts/add/", views.account_add, name="account-add"),
    path("dns-credentials/", views.dns_credential_list, name="dns-credential-list"),
    path("dns-credentials/add/", views.dns_credential_add, name="dns-credential-add"),
    path("dns-credentials/<int:pk>/", views.dns_credential_detail, name="dns-credential-detail"),
    path("dns-credentials/<int:pk>/test/", views.dns_credential_test, name="dns-credential-test"),
    path("dns-credentials/<int:pk>/delete/", views.dns_credential_delete, name="dns-credential-delete"),
    path("certificates/<int:pk>/", views.certificate_detail, name="certificate-detail"),
    path("certificates/<int:pk>/history/", views.certificate_history, name="certificate-history"),
    path("certificates/<int:pk>/reissue/", views.reissue_certificate, name="certificate-reissue"),
    path("certificate-versions/<int:pk>/download/<slug:fmt>/", views.version_download, name="version-download"),
    path("certificate-versions/<int:pk>/revoke/", views.version_revoke, name="version-revoke"),
    path("renewals/", views.renewal_overview, name="renewal-overview"),
    path("notifications/", views.notification_list, name="notification-list"),
    path("notifications/add/", views.notification_add, name="notification-add"),
    path("notifications/<int:pk>/test/", views.notification_test, name="notification-test"),
    path("notifications/<int:pk>/delete/", views.notification_delete, name="notification-delete"),
    path("import/", import_views.import_page, name="import"),
    path("reload-presets/", reload_preset_views.reload_preset_list, name="reload-preset-list"),
    path("reload-presets/add/", reload_preset_views.reload_preset_form, name="reload-preset-add"),
    path("reload-presets/<int:pk>/", reload_preset_views.reload_preset_form, name="reload-preset-edit"),
    path("reload-presets/<int:pk>/delete/", reload_preset_views.reload_preset_delete, name="reload-preset-delete"),
]
