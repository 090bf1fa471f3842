from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from api import auth_views, problems
from api.views import availability, bookings, clients, daily_list, health, patients, planner, reference, workflow


class Router(DefaultRouter):
    # Ids are positive 64-bit integers (a plan's, a UUID); anything else is a 404 without a query.
    def get_lookup_regex(self, viewset: object, lookup_prefix: str = "") -> str:
        pattern = getattr(viewset, "lookup_value_regex", "[0-9]{1,18}")
        return rf"(?P<{lookup_prefix}pk>{pattern})"


router = Router(trailing_slash=True)
router.include_root_view = False
router.register("sites", reference.SiteViewSet, basename="site")
router.register("opening-hours", reference.OpeningHoursViewSet, basename="opening-hours")
router.register("rooms", reference.RoomViewSet, basename="room")
router.register("equipment", reference.EquipmentViewSet, basename="equipment")
router.register("recovery-bays", reference.RecoveryBayViewSet, basename="recovery-bay")
router.register("downtime", reference.DowntimeViewSet, basename="downtime")
router.register("staff", reference.StaffMemberViewSet, basename="staff")
router.register("credentials", reference.CredentialViewSet, basename="credential")
router.register("shifts", reference.ShiftViewSet, basename="shift")
router.register("time-off", reference.TimeOffViewSet, basename="time-off")
router.register("procedure-types", reference.ProcedureTypeViewSet, basename="procedure-type")
router.register("patients", patients.PatientViewSet, basename="patient")
router.register("medication-holds", patients.MedicationHoldViewSet, basename="medication-hold")
router.register("drugs", patients.DrugViewSet, basename="drug")
router.register("bookings", bookings.BookingViewSet, basename="booking")
router.register("bookings", workflow.BookingWorkflowViewSet, basename="booking-workflow")
router.register("lab-results", workflow.LabResultViewSet, basename="lab-result")
router.register("imaging-studies", workflow.ImagingStudyViewSet, basename="imaging-study")
router.register("alerts", workflow.AlertViewSet, basename="alert")
router.register("service-accounts", clients.ServiceAccountViewSet, basename="service-account")
router.register("api-keys", clients.ApiKeyViewSet, basename="api-key")
router.register("plans", planner.PlanViewSet, basename="plan")

v1: list[URLPattern | URLResolver] = [
    path("auth/token/", auth_views.TokenView.as_view(), name="token"),
    path("availability/", availability.AvailabilityView.as_view(), name="availability"),
    path("availability/reasons/", availability.ReasonsView.as_view(), name="availability-reasons"),
    path("daily-list/", daily_list.DailyListView.as_view(), name="daily-list"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("health/", health.health, name="health"),
    path("v1/", include(v1)),
    path("problems/", problems.problem_index, name="problems"),
    path("problems/<slug:code>", problems.problem_page, name="problem"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]
