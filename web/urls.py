from django.urls import path

from web.views import board, booking, calendar, cases, day, downtime, flow, home, patients, plan

app_name = "web"

urlpatterns = [
    path("", home.home, name="home"),
    path("signin/", home.SignIn.as_view(), name="signin"),
    path("signout/", home.SignOut.as_view(), name="signout"),
    path("day/", day.physician_day, name="day"),
    path("cases/", day.cases_of_the_day, name="cases_of_day"),
    path("cases/<int:pk>/", cases.case_page, name="case"),
    path("cases/<int:pk>/confirm/", cases.confirm, name="confirm"),
    path("cases/<int:pk>/cancel/", cases.cancel, name="cancel"),
    path("cases/<int:pk>/reschedule/", cases.reschedule, name="reschedule"),
    path("board/", board.board, name="board"),
    path("flow/", flow.flow, name="flow"),
    path("flow/<int:pk>/", flow.flow_case, name="flow_case"),
    path("flow/<int:pk>/checklist/", flow.flow_checklist, name="flow_checklist"),
    path("flow/<int:pk>/times/", flow.flow_correct, name="flow_correct"),
    path("flow/<int:pk>/<slug:step>/", flow.flow_step, name="flow_step"),
    path("downtime/", downtime.downtime_list, name="downtime"),
    path("downtime/<int:pk>/", downtime.downtime_detail, name="downtime_detail"),
    path("downtime/<int:pk>/swap/", downtime.downtime_swap, name="downtime_swap"),
    path("plan/", plan.plan_home, name="plan"),
    path("plan/<uuid:pk>/", plan.plan_detail, name="plan_detail"),
    path("plan/<uuid:pk>/apply/", plan.plan_apply_view, name="plan_apply"),
    path("calendar/", calendar.calendar_links, name="calendar"),
    path("calendar/new/", calendar.calendar_new, name="calendar_new"),
    path("calendar/off/", calendar.calendar_off, name="calendar_off"),
    path("patients/", patients.search, name="patients"),
    path("patients/new/", patients.register, name="register"),
    path("patients/<int:pk>/", patients.patient_page, name="patient"),
    path("patients/<int:pk>/holds/", patients.add_hold, name="add_hold"),
    path("book/", booking.workspace, name="book"),
    path("book/search/", booking.search, name="book_search"),
    path("book/check/", booking.check, name="book_check"),
    path("book/hold/", booking.hold, name="book_hold"),
]
