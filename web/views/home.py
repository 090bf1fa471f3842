"""Sign-in, sign-out and the home address that sends each role to its page."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from core.roles import ADMIN, NURSE, PHYSICIAN, SCHEDULER, TECH, primary_role
from web.access import page, refused

HOME_BY_ROLE = {
    ADMIN: "web:book",
    SCHEDULER: "web:book",
    PHYSICIAN: "web:day",
    TECH: "web:day",
    NURSE: "web:flow",
}


class SignIn(auth_views.LoginView):
    template_name = "web/signin.html"
    redirect_authenticated_user = True


class SignOut(auth_views.LogoutView):
    http_method_names = ["post", "options"]


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("web:signin")
    target = HOME_BY_ROLE.get(primary_role(request.user) or "")
    if target is None:
        return refused(request, "Your account has no role yet; ask an administrator to give you one.")
    return redirect(target)


@page()
def refused_page(request: HttpRequest) -> HttpResponse:
    return refused(request)
