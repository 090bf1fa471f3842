from django.urls import path

from web.views import booking, cases, day, home, patients

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
    path("patients/", patients.search, name="patients"),
    path("patients/new/", patients.register, name="register"),
    path("patients/<int:pk>/", patients.patient_page, name="patient"),
    path("patients/<int:pk>/holds/", patients.add_hold, name="add_hold"),
    path("book/", booking.workspace, name="book"),
    path("book/search/", booking.search, name="book_search"),
    path("book/check/", booking.check, name="book_check"),
    path("book/hold/", booking.hold, name="book_hold"),
]
