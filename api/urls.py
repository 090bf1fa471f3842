from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from api import auth_views, hold_views, views, workflow_views


class Router(DefaultRouter):
    # Ids are positive 64-bit integers; anything else is a 404 without a query.
    def get_lookup_regex(self, viewset: object, lookup_prefix: str = "") -> str:
        return rf"(?P<{lookup_prefix}pk>[0-9]{{1,18}})"


router = Router(trailing_slash=True)
router.include_root_view = False
router.register("sites", views.SiteViewSet, basename="site")
router.register("opening-hours", views.OpeningHoursViewSet, basename="opening-hours")
router.register("rooms", views.RoomViewSet, basename="room")
router.register("equipment", views.EquipmentViewSet, basename="equipment")
router.register("recovery-bays", views.RecoveryBayViewSet, basename="recovery-bay")
router.register("downtime", views.DowntimeViewSet, basename="downtime")
router.register("staff", views.StaffMemberViewSet, basename="staff")
router.register("credentials", views.CredentialViewSet, basename="credential")
router.register("shifts", views.ShiftViewSet, basename="shift")
router.register("time-off", views.TimeOffViewSet, basename="time-off")
router.register("procedure-types", views.ProcedureTypeViewSet, basename="procedure-type")
router.register("patients", views.PatientViewSet, basename="patient")
router.register("medication-holds", views.MedicationHoldViewSet, basename="medication-hold")
router.register("bookings", views.BookingViewSet, basename="booking")
router.register("bookings", workflow_views.BookingWorkflowViewSet, basename="booking-workflow")
router.register("lab-results", workflow_views.LabResultViewSet, basename="lab-result")
router.register("imaging-studies", workflow_views.ImagingStudyViewSet, basename="imaging-study")
router.register("alerts", workflow_views.AlertViewSet, basename="alert")
router.register("bookings", hold_views.HoldViewSet, basename="booking-hold")

v1: list[URLPattern | URLResolver] = [
    path("auth/token/", auth_views.TokenView.as_view(), name="token"),
    path("availability/", views.AvailabilityView.as_view(), name="availability"),
    path("availability/reasons/", views.ReasonsView.as_view(), name="availability-reasons"),
    path("daily-list/", views.DailyListView.as_view(), name="daily-list"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("health/", views.health, name="health"),
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]
