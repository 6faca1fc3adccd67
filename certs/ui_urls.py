"""Certificate pages; included by panel.ui_urls, so the names live in the "ui" namespace."""

from django.urls import path

from certs import views

urlpatterns = [
    path("sites/<int:site_pk>/certificates/", views.issue_certificate, name="certificate-issue"),
    path("certificates/", views.certificate_list, name="certificate-list"),
    path("certificates/<int:pk>/renew/", views.renew_certificate, name="certificate-renew"),
    path("orders/<int:pk>/status/", views.order_status, name="order-status"),
    path("acme-accounts/", views.account_list, name="account-list"),
    path("acme-accounts/add/", views.account_add, name="account-add"),
]
