"""The browser UI. Namespaced "ui": the REST router already owns names like "site-list"."""

from django.urls import include, path
from django.views.generic import RedirectView

from panel import views

app_name = "ui"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="ui:dashboard"), name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("sites/", views.site_list, name="site-list"),
    path("sites/add/", views.site_add, name="site-add"),
    path("sites/<int:pk>/", views.site_detail, name="site-detail"),
    path("sites/<int:pk>/edit/", views.site_edit, name="site-edit"),
    path("sites/<int:pk>/delete/", views.site_delete, name="site-delete"),
    path("sites/<int:pk>/force-https/", views.site_force_https, name="site-force-https"),
    path("sites/<int:pk>/nginx-config/", views.site_config_preview, name="site-config-preview"),
    path("", include("certs.ui_urls")),
]
