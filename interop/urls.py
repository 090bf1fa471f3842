from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import DefaultRouter

from interop import api, ical
from interop.fhir import operations, views

# FHIR ids: letters, digits, '-' and '.', up to 64 characters.
fhir: list[URLPattern] = [
    path("metadata", views.MetadataView.as_view(), name="fhir-metadata"),
    path("Appointment/$find", operations.FindView.as_view(), name="fhir-find"),
    path("Appointment/$hold", operations.HoldView.as_view(), name="fhir-hold"),
    path("Appointment/$book", operations.BookView.as_view(), name="fhir-book"),
    path(
        "Appointment/<str:ident>",
        operations.AppointmentInstanceView.as_view(),
        {"kind": "Appointment"},
        name="fhir-appointment",
    ),
    path("<str:kind>", views.TypeView.as_view(), name="fhir-type"),
    path("<str:kind>/<str:ident>", views.InstanceView.as_view(), name="fhir-instance"),
]


class Router(DefaultRouter):
    def get_lookup_regex(self, viewset: object, lookup_prefix: str = "") -> str:
        return rf"(?P<{lookup_prefix}pk>[0-9]{{1,18}})"


router = Router(trailing_slash=True)
router.include_root_view = False
router.register("webhooks", api.WebhookViewSet, basename="webhook")
router.register("deliveries", api.DeliveryViewSet, basename="delivery")

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/", include(router.urls)),
    path("fhir/r4/", include(fhir)),
    path("ical/<str:token>/<str:kind>/<int:pk>.ics", ical.calendar_feed, name="ical-feed"),
]
