from django.urls import URLPattern, URLResolver, include, path

from interop import ical
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
urlpatterns: list[URLPattern | URLResolver] = [
    path("fhir/r4/", include(fhir)),
    path("ical/<str:token>/<str:kind>/<int:pk>.ics", ical.calendar_feed, name="ical-feed"),
]
