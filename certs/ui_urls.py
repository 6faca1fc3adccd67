"""Certificate pages; included by panel.ui_urls, so the names live in the "ui" namespace."""

from django.urls import path

from certs.views import (acme_accounts, certificates, dns_credentials, imports, notifications, orders, reload_presets,
                         renewals, versions)

urlpatterns = [
    path("sites/<int:site_pk>/certificates/", certificates.issue_certificate, name="certificate-issue"),
    path("sites/<int:site_pk>/certificates/one-click/", certificates.issue_in_one_click,
         name="certificate-one-click"),
    path("certificates/", certificates.certificate_list, name="certificate-list"),
    path("certificates/issue-external/", certificates.certificate_issue_external, name="certificate-issue-external"),
    path("certificates/upload/", certificates.certificate_upload, name="certificate-upload"),
    path("certificates/<int:pk>/renew/", certificates.renew_certificate, name="certificate-renew"),
    path("orders/<int:pk>/status/", orders.order_status, name="order-status"),
    path("orders/<int:pk>/continue/", orders.order_continue, name="order-continue"),
    path("acme-accounts/", acme_accounts.account_list, name="account-list"),
    path("acme-accounts/add/", acme_accounts.account_add, name="account-add"),
    path("dns-credentials/", dns_credentials.dns_credential_list, name="dns-credential-list"),
    path("dns-credentials/add/", dns_credentials.dns_credential_add, name="dns-credential-add"),
    path("dns-credentials/<int:pk>/", dns_credentials.dns_credential_detail, name="dns-credential-detail"),
    path("dns-credentials/<int:pk>/edit/", dns_credentials.dns_credential_edit, name="dns-credential-edit"),
    path("dns-credentials/<int:pk>/test/", dns_credentials.dns_credential_test, name="dns-credential-test"),
    path("dns-credentials/<int:pk>/delete/", dns_credentials.dns_credential_delete, name="dns-credential-delete"),
    path("certificates/<int:pk>/", certificates.certificate_detail, name="certificate-detail"),
    path("certificates/<int:pk>/history/", versions.certificate_history, name="certificate-history"),
    path("certificates/<int:pk>/reissue/", certificates.reissue_certificate, name="certificate-reissue"),
    path("certificate-versions/<int:pk>/download/<slug:fmt>/", versions.version_download, name="version-download"),
    path("certificate-versions/<int:pk>/revoke/", versions.version_revoke, name="version-revoke"),
    path("renewals/", renewals.renewal_overview, name="renewal-overview"),
    path("notifications/", notifications.notification_list, name="notification-list"),
    path("notifications/add/", notifications.notification_add, name="notification-add"),
    path("notifications/<int:pk>/test/", notifications.notification_test, name="notification-test"),
    path("notifications/<int:pk>/delete/", notifications.notification_delete, name="notification-delete"),
    path("import/", imports.import_page, name="import"),
    path("reload-presets/", reload_presets.reload_preset_list, name="reload-preset-list"),
    path("reload-presets/add/", reload_presets.reload_preset_form, name="reload-preset-add"),
    path("reload-presets/<int:pk>/", reload_presets.reload_preset_form, name="reload-preset-edit"),
    path("reload-presets/<int:pk>/delete/", reload_presets.reload_preset_delete, name="reload-preset-delete"),
]
